"""Sampling parameters, logits filters and penalties, logprobs, stop strings, UTF-8 streaming."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from instructgen.errors import ConfigError
from instructgen.inference.sampling import (
    GREEDY_BELOW,
    MAX_LOGPROBS,
    SEED_LIMIT,
    SamplingParams,
    apply_penalties,
    choice_generator,
    choice_seed,
    filter_logits,
    make_generator,
    sample_next,
    token_logprobs,
)
from instructgen.inference.stops import Detokenizer, StopStrings, TextStream, truncate_at_stop
from instructgen.tokenizer import Tokenizer


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -3}, "top_k"),
        ({"min_p": 2.0}, "min_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"min_tokens": 9, "max_tokens": 4}, "min_tokens"),
        ({"presence_penalty": 3.0}, "presence_penalty"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"logprobs": 99}, "logprobs"),
        ({"temperature": float("nan")}, "temperature"),
        ({"tempreature": 0.5}, "tempreature"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": 1.5}, "n"),
        ({"stop": 3}, "stop"),
    ],
)
def test_bad_sampling_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        SamplingParams.from_kwargs(**kwargs)


def test_stop_accepts_one_string():
    assert SamplingParams(stop="\n").stop == ["\n"]
    assert SamplingParams.from_kwargs(max_tokens=None).max_tokens is None


def test_top_k_top_p_min_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]] * 3))
    kept = filter_logits(logits, top_k=[2, 0, 0], top_p=[1.0, 0.7, 1.0], min_p=[0.0, 0.0, 0.25])
    finite = torch.isfinite(kept).tolist()
    assert finite[0] == [True, True, False, False]  # top-2
    assert finite[1] == [True, True, False, False]  # 0.5 + 0.25 >= 0.7
    assert finite[2] == [True, True, True, False]  # p >= 0.25 * 0.5


def test_top_p_always_keeps_the_best_token():
    logits = torch.tensor([[5.0, 1.0, 0.0]])
    kept = filter_logits(logits, top_k=[0], top_p=[0.01], min_p=[0.0])
    assert torch.isfinite(kept).tolist() == [[True, False, False]]


def test_penalties_follow_their_formulas():
    logits = torch.tensor([2.0, -2.0, 1.0, 0.5])
    counts = torch.tensor([2.0, 0.0, 1.0, 0.0])
    seen = torch.tensor([True, True, False, False])
    params = SamplingParams(repetition_penalty=2.0, frequency_penalty=0.5, presence_penalty=0.25)
    out = apply_penalties(logits.clone(), counts, seen, params)
    # l/r or l·r on seen tokens, then − α_f·c − α_p·1[c>0]
    expected = torch.tensor([2.0 / 2 - 0.5 * 2 - 0.25, -2.0 * 2, 1.0 - 0.5 - 0.25, 0.5])
    assert torch.allclose(out, expected)


def test_sampling_is_greedy_at_zero_temperature_and_seeded_otherwise():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    greedy = SamplingParams(temperature=0)
    assert sample_next(logits, [greedy] * 4, [None] * 4) == logits.argmax(-1).tolist()
    hot = SamplingParams(temperature=1.5)

    def draw(seed: int) -> list[int]:
        gens = [make_generator(seed) for _ in range(4)]
        return [t for _ in range(20) for t in sample_next(logits, [hot] * 4, gens)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    one = SamplingParams(temperature=1.0, top_k=1)  # top-k 1 is greedy whatever the seed
    assert sample_next(logits, [one] * 4, [make_generator(3)] * 4) == logits.argmax(-1).tolist()


def test_greedy_cutoff_and_choice_seeds():
    """T < GREEDY_BELOW is greedy (no generator); choice i of a request seeded s draws with s + i."""
    assert SamplingParams(temperature=GREEDY_BELOW / 2).greedy
    assert not SamplingParams(temperature=GREEDY_BELOW).greedy
    assert choice_generator(SamplingParams(temperature=0, seed=3), 0) is None
    assert [choice_seed(9, i) for i in range(3)] == [9, 10, 11]
    assert choice_seed(None, 2) is None
    hot = SamplingParams(temperature=1.0, seed=9)
    for i in range(3):
        mine, lone = choice_generator(hot, i), make_generator(9 + i)
        assert torch.equal(torch.rand(8, generator=mine), torch.rand(8, generator=lone))
    unseeded = SamplingParams(temperature=1.0)
    draws = {torch.rand(1, generator=choice_generator(unseeded, 0)).item() for _ in range(4)}
    assert len(draws) > 1  # no seed: each generator seeds from the OS


def test_server_limits_come_from_sampling():
    from instructgen.serve import protocol

    assert protocol.MAX_LOGPROBS is MAX_LOGPROBS and protocol.SEED_LIMIT is SEED_LIMIT
    assert SEED_LIMIT + protocol.MAX_N < 2**63  # every choice's seed fits torch's generator


def test_python_api_choices_use_the_servers_seeds(gpt2_dir):
    """LLM.generate(seed=s, n=k): choice i is what a lone request seeded s + i generates."""
    from instructgen.inference import load

    kwargs = dict(temperature=1.0, max_tokens=8, ignore_eos=True)
    with load(gpt2_dir) as llm:
        many = llm.generate("The sea", seed=5, n=3, **kwargs).choices
        lone = [llm.generate("The sea", seed=5 + i, **kwargs).text for i in range(3)]
    assert [c.text for c in many] == lone


def test_token_logprobs_are_log_softmax_with_sorted_alternatives():
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(1))
    chosen = [4, 0, 19]
    records = token_logprobs(logits, chosen, top=3)
    ref = torch.log_softmax(logits, -1)
    for row, (rec, token) in enumerate(zip(records, chosen)):
        assert rec.token_id == token
        assert math.isclose(rec.logprob, float(ref[row, token]), rel_tol=1e-5)
        values = [v for _, v in rec.top]
        assert values == sorted(values, reverse=True) and len(values) == 3
        assert rec.top[0][0] == int(ref[row].argmax())


# ----------------------------------------------------------------------------------------------
# text: whole characters only, stop strings cut out


def test_split_chinese_character_is_held_back(tokenizer_dir):
    tok = Tokenizer.from_dir(tokenizer_dir)
    text = "龍在天上飛。Hello 世界"
    ids = tok.encode(text)
    assert len(ids) > len(text) - 3  # rare characters are split across byte-level tokens
    detok = Detokenizer(tok)
    deltas = [detok.push(i) for i in ids]
    deltas.append(detok.flush())
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert "" in deltas  # at least one token completed no character
    for d in deltas:
        d.encode("utf-8")  # each delta alone is valid UTF-8


def test_detokenizer_context_is_not_emitted(tokenizer_dir):
    tok = Tokenizer.from_dir(tokenizer_dir)
    prompt, answer = tok.encode("春天来了，"), tok.encode("花开了。")
    stream = TextStream(tok, context=prompt[-6:])
    out = "".join(stream.push(i) for i in answer) + stream.flush()
    assert out == "花开了。"


def test_stop_string_spanning_deltas_is_cut():
    stop = StopStrings(["o w", "END"])
    out = [stop.push(d) for d in ["Hel", "lo", " ", "wo", "rld"]]
    assert "".join(out) == "Hell"
    assert stop.stopped
    assert out[1] == "l"  # "o" was held back: it might start "o w"


@settings(max_examples=200, deadline=None)
@example(text="aa a", stops=[" ", "a a"], cuts=[3])  # " " completes before "a a", which began first
@given(
    text=st.text(alphabet="ab 春\n", max_size=30),
    stops=st.lists(st.text(alphabet="ab 春\n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(0, 30), max_size=8),
)
def test_stop_strings_match_whole_text_whatever_the_split(text, stops, cuts):
    bounds = sorted({0, len(text), *[min(c, len(text)) for c in cuts]})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    stop = StopStrings(stops)
    emitted = "".join(stop.push(p) for p in pieces) + stop.flush()
    expected, hit = truncate_at_stop(text, stops)
    assert emitted == expected
    assert stop.stopped == hit
