"""The evaluation runner: batches, halving a failed batch, retries, the per-item cache."""

from __future__ import annotations

import json

import pytest

from instructgen.errors import ConfigError, UserError
from instructgen.evaluate.runner import ItemCache, run_items, spread


class Answerer:
    """call(payloads): upper-cases each; 'bad' always fails, 'flaky' fails on its first try,
    'local' raises a (permanent) local UserError."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.flaky_tries = 0

    def __call__(self, payloads):
        self.calls.append(list(payloads))
        if "bad" in payloads:
            raise RuntimeError("broken item")
        if "local" in payloads:
            raise UserError("prompt too long")
        if "flaky" in payloads:
            self.flaky_tries += 1
            if self.flaky_tries == 1:
                raise ConnectionError("try again")
        return [p.upper() for p in payloads]


def test_failed_batches_are_halved_retried_and_reported(tmp_path):
    items = [(str(i), p) for i, p in enumerate(["a", "b", "bad", "c", "local", "d", "e", "f"])]
    call = Answerer()
    outcome = run_items(items, call, batch_size=8, retries=2, backoff=0, progress=False)
    assert outcome.outputs == {"0": "A", "1": "B", "3": "C", "5": "D", "6": "E", "7": "F"}
    assert outcome.failures["2"] == "RuntimeError: broken item"
    assert outcome.failures["4"] == "UserError: prompt too long"
    assert call.calls.count(["bad"]) == 3  # 1 + 2 retries
    assert call.calls.count(["local"]) == 1  # a local UserError is not retried
    assert ["a", "b"] in call.calls  # the good half of a failed half went through whole

    flaky = Answerer()
    outcome = run_items([("x", "flaky")], flaky, retries=1, backoff=0, progress=False)
    assert outcome.outputs == {"x": "FLAKY"} and flaky.flaky_tries == 2


def test_config_errors_stop_the_run():
    def broken(payloads):
        raise ConfigError("unknown sampling parameter", field="temprature")

    with pytest.raises(ConfigError):
        run_items([("1", "a"), ("2", "b")], broken, workers=2, batch_size=1, progress=False)


def test_the_cache_resumes_matching_items_and_ignores_a_torn_line(tmp_path):
    path = tmp_path / "outputs.jsonl"
    items = [("1", "a"), ("2", "b"), ("3", "c")]
    run_items(items, Answerer(), cache=ItemCache(path, "model-1"), progress=False)
    with path.open("a", encoding="utf-8") as f:
        f.write('{"id": "4", "key": "x", "outp')  # a run killed mid-line
    call = Answerer()
    outcome = run_items(
        [*items, ("4", "d")],
        call,
        cache=ItemCache(path, "model-1"),
        workers=2,
        batch_size=1,
        progress=False,
    )
    assert outcome.cached == 3 and call.calls == [["d"]]
    other = run_items(items, Answerer(), cache=ItemCache(path, "model-2"), progress=False)
    assert other.cached == 0  # another model (salt): nothing reused
    cache = ItemCache(path, "model-2")
    cache.compact(items)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [entry["id"] for entry in lines] == ["1", "2", "3"]


def test_spread_keeps_every_kth_record():
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread(list(range(4)), None) == [0, 1, 2, 3]
    with pytest.raises(ConfigError):
        spread([1, 2], 0)
