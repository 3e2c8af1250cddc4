"""`instructgen serve --moderation F`: requests the policy blocks are refused in OpenAI's error shape."""

from __future__ import annotations

import openai
import pytest

from .serve_support import server


def test_blocked_input_is_refused_and_the_server_keeps_serving(llama_dir, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("blocked_terms:\n  competitors: [AcmeCorp]\n", encoding="utf-8")
    with server(llama_dir, "--moderation", str(policy)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none")
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Tell me about AcmeCorp"}],
                max_tokens=4,
            )
        assert refused.value.code == "content_policy_violation"
        assert refused.value.body["message"]
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="m", prompt="AcmeCorp is", max_tokens=4)
        fine = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "How do I kill the process?"}],
            max_tokens=4,
            temperature=0,
        )
        assert fine.choices[0].finish_reason in ("stop", "length")
