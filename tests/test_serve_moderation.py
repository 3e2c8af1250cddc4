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


def test_support_bot_route_on_the_server(tokenizer_dir, tmp_path):
    """`instructgen serve --support-kb F` mounts the customer-service bot beside the OpenAI API."""
    import json

    import httpx

    from .conftest import make_model_dir

    model = make_model_dir(tmp_path / "wide", tokenizer_dir, "llama", max_seq_len=1024)
    kb = tmp_path / "faq.jsonl"
    kb.write_text(
        json.dumps(
            {
                "id": "returns",
                "question": "How do returns work?",
                "answer": "Returns are free within 30 days.",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    support = ["--support-kb", str(kb), "--support-db", str(tmp_path / "s.db")]
    with server(model, *support, cli=True) as base:
        human = httpx.post(
            base + "/support/sessions/s1/messages",
            json={"message": "I want to speak to a human agent"},
            timeout=60,
        ).json()
        assert human["escalated"] is True
        answer = httpx.post(
            base + "/support/sessions/s2/messages",
            json={"message": "How do returns work?"},
            timeout=60,
        )
        assert answer.status_code == 200 and "returns" in answer.json()["citations"]
        assert httpx.get(base + "/support/sessions/s1", timeout=10).status_code == 200
