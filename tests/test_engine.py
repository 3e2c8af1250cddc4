"""The native engine: HF-equal greedy decoding, batching, continuous batching, sampling controls."""

from __future__ import annotations

import pytest
import torch

from instructgen.errors import UserError
from instructgen.inference.engine import Engine
from instructgen.inference.sampling import SamplingParams
from instructgen.model.checkpoint import load_model
from tests.conftest import make_model_dir

PROMPTS = ["春天来了", "The quick brown fox jumps over the lazy", "def add(a, b):\n    return", "1"]
GREEDY = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)


@pytest.fixture(scope="module")
def engines(gpt2_dir, llama_dir):
    return {"gpt2": Engine.from_dir(gpt2_dir), "llama": Engine.from_dir(llama_dir)}


def _ids(engine: Engine, prompts, params=GREEDY) -> list[list[int]]:
    return [r.sequences[0].output_ids for r in engine.generate(prompts, params)]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_equals_transformers_generate(engines, arch, gpt2_dir, llama_dir):
    from transformers import AutoModelForCausalLM

    engine = engines[arch]
    hf = AutoModelForCausalLM.from_pretrained({"gpt2": gpt2_dir, "llama": llama_dir}[arch]).eval()
    ours = _ids(engine, PROMPTS)  # one batch of four prompt lengths (left-padded)
    for prompt, mine in zip(PROMPTS, ours):
        ids = torch.tensor([engine.encode(prompt)])
        with torch.no_grad():
            out = hf.generate(ids, max_new_tokens=24, do_sample=False, eos_token_id=None)
        assert mine == out[0, ids.size(1) :].tolist()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_continuous_batching_matches_running_alone(engines, arch):
    engine = engines[arch]
    alone = [_ids(engine, [p])[0] for p in PROMPTS]
    requests = [engine.add_request(PROMPTS[0], GREEDY)]
    steps = 0
    while not all(r.finished for r in requests) or len(requests) < len(PROMPTS):
        engine.step()
        steps += 1
        if steps % 5 == 0 and len(requests) < len(PROMPTS):  # join mid-flight
            requests.append(engine.add_request(PROMPTS[len(requests)], GREEDY))
    assert [r.sequences[0].output_ids for r in requests] == alone
    assert not engine.has_unfinished()


def test_timeline_shifts_when_the_context_is_full(tmp_path, tokenizer_dir):
    """Rows joining late push the shared timeline past the context; it shifts left."""
    model_dir = make_model_dir(tmp_path / "m", tokenizer_dir, "gpt2", max_seq_len=40)
    engine = Engine.from_dir(model_dir)
    params = SamplingParams(temperature=0, max_tokens=30, ignore_eos=True)
    prompts = ["hello there", "春天", "abc def ghi"]
    alone = [_ids(engine, [p], params)[0] for p in prompts]
    shifts = []
    shift = engine.cache.shift
    engine.cache.shift = lambda by: (shifts.append(by), shift(by))  # record, then shift
    requests = []
    for prompt in prompts:
        requests.append(engine.add_request(prompt, params))
        for _ in range(12):
            engine.step()
    while engine.has_unfinished():
        engine.step()
    assert [r.sequences[0].output_ids for r in requests] == alone
    assert any(by < 0 for by in shifts)


def test_role_ids_reach_the_model(tmp_path, tokenizer_dir):
    model_dir = make_model_dir(tmp_path / "roles", tokenizer_dir, "llama", n_roles=4)
    engine = Engine.from_dir(model_dir)
    prompt = engine.encode("春天来了，花开了")
    roles = [2] * len(prompt)
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    out = engine.generate([prompt], params, role_ids=[roles])[0].sequences[0].output_ids
    model = load_model(model_dir)
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(len(out)):
            role_ids = torch.tensor([roles + [3] * (len(seq) - len(prompt))])
            logits = model(torch.tensor([seq]), role_ids=role_ids)
            seq.append(int(logits[0, -1].argmax()))
    assert out == seq[len(prompt) :]


def test_same_seed_same_text_and_n_samples(engines):
    engine = engines["llama"]
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=16, seed=11, n=3)
    first = engine.generate(["春天"], params)[0].sequences
    again = engine.generate(["春天"], params)[0].sequences
    assert [s.output_ids for s in first] == [s.output_ids for s in again]
    assert len({tuple(s.output_ids) for s in first}) > 1  # the n samples differ
    other = engine.generate(["春天"], SamplingParams(temperature=1.0, max_tokens=16, seed=12))
    assert other[0].sequences[0].output_ids != first[0].output_ids


def test_stop_strings_and_stop_tokens(engines):
    engine = engines["gpt2"]
    prompt = "The quick brown fox"

    def run(**kwargs):
        params = SamplingParams(temperature=1.0, seed=3, max_tokens=24, ignore_eos=True, **kwargs)
        return engine.generate([prompt], params)[0].outputs(engine.tokenizer)[0]

    full = run()
    assert full.finish_reason == "length" and len(full.token_ids) == 24
    stop = full.text[5:8]
    out = run(stop=[stop])
    assert out.finish_reason == "stop"
    assert out.text == full.text[: full.text.index(stop)]
    ids = full.token_ids
    k = next(k for k in range(2, len(ids)) if ids[k] not in ids[:k])  # a token's first use
    out = run(stop_token_ids=[ids[k]])
    assert out.finish_reason == "stop" and out.token_ids == ids[:k]
    assert out.num_generated == k + 1  # the stop token counts as generated, not as text
    out = run(stop_token_ids=[ids[k]], min_tokens=k + 3)
    assert len(out.token_ids) >= k + 3 and ids[k] not in out.token_ids[: k + 3]


def test_penalties_reduce_repetition(engines):
    engine = engines["llama"]
    plain = _ids(engine, ["春天"])[0]
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, frequency_penalty=2.0)
    penalised = _ids(engine, ["春天"], params)[0]
    assert len(set(penalised)) > len(set(plain))
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, repetition_penalty=5.0)
    assert len(set(_ids(engine, ["春天"], params)[0])) > len(set(plain))


def test_logprobs_and_prompt_logprobs(engines, llama_dir):
    engine = engines["llama"]
    params = SamplingParams(
        temperature=0, max_tokens=6, ignore_eos=True, logprobs=3, prompt_logprobs=2
    )
    request = engine.generate(["春天来了，花开了"], params)[0]
    out = request.outputs(engine.tokenizer)[0]
    seq = request.prompt_ids + out.token_ids
    model = load_model(llama_dir)
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([seq]))[0], -1)
    n = len(request.prompt_ids)
    assert request.prompt_logprobs[0] is None
    for t in range(1, n):
        rec = request.prompt_logprobs[t]
        assert rec.token_id == seq[t] and len(rec.top) == 2
        assert rec.logprob == pytest.approx(float(ref[t - 1, seq[t]]), abs=1e-4)
    for j, rec in enumerate(out.logprobs):
        assert rec.token_id == seq[n + j] and len(rec.top) == 3
        assert rec.top[0][0] == rec.token_id  # greedy picks the most likely token
        assert rec.logprob == pytest.approx(float(ref[n + j - 1, seq[n + j]]), abs=1e-4)


def test_echo_with_zero_max_tokens(engines):
    engine = engines["gpt2"]
    params = SamplingParams(max_tokens=0, prompt_logprobs=0)
    request = engine.generate(["hello world"], params)[0]
    out = request.outputs(engine.tokenizer)[0]
    assert out.text == "" and out.finish_reason == "length"
    assert len(request.prompt_logprobs) == len(request.prompt_ids)


def test_stream_deltas_join_to_the_generated_text(engines):
    engine = engines["llama"]
    params = SamplingParams(temperature=0.8, max_tokens=40, seed=5)
    deltas = list(engine.stream("请用中文写一首关于春天的诗。", params))
    text = engine.generate(["请用中文写一首关于春天的诗。"], params)[0].outputs(engine.tokenizer)[0]
    assert "".join(deltas) == text.text
    assert all(d for d in deltas)
    stopped = engine.stream("春天", params)
    next(stopped)
    stopped.close()  # a consumer that goes away aborts its request
    engine.step()
    assert not engine.has_unfinished()


def test_abort_frees_the_row(engines):
    engine = engines["gpt2"]
    keep = engine.add_request("春天", GREEDY)
    drop = engine.add_request("hello", GREEDY)
    engine.step()
    engine.abort(drop)
    while not keep.finished:
        engine.step()
    assert drop.finished and drop.sequences[0].finish_reason == "abort"
    assert keep.sequences[0].output_ids == _ids(engine, ["春天"])[0]


def test_context_window(engines):
    engine = engines["gpt2"]  # context 128
    with pytest.raises(UserError, match="context window is 128"):
        engine.add_request("a " * 200)
    long = engine.encode("hello " * 60)[:120]
    assert len(long) == 120
    out = engine.generate([long], SamplingParams(temperature=0, max_tokens=50, ignore_eos=True))
    assert len(out[0].sequences[0].output_ids) == 128 - 120
    assert out[0].sequences[0].finish_reason == "length"


def test_batched_torch_path_equals_the_c_path(engines, llama_dir):
    """A batch of four decodes to the same tokens on the torch path (no C compiler) as in C."""
    expected = _ids(engines["llama"], PROMPTS)
    engine = Engine.from_dir(llama_dir)
    engine.decoder._native = False
    assert _ids(engine, PROMPTS) == expected
