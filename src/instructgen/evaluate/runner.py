"""Running a model over evaluation items: batched on a local model, concurrent against a URL,
cached per item on disk so that a re-run resumes, retried on failure, with a progress bar.

An item is (id, payload); `call(payloads) -> outputs` answers a list of payloads (one output each,
JSON-serialisable). The cache is a JSONL file of {"id", "key", "output"} lines, appended as items
finish; `key` hashes the payload with a salt (the model fingerprint and the settings), so an
output is reused only for the same item, model and settings. A failed item is retried; if it
keeps failing it is returned in `Outcome.failures` with its last error, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError, UserError
from instructgen.files import atomic_write_text
from instructgen.jsonl import read_json_lines

Call = Callable[[list[Any]], list[Any]]


@dataclass
class Scored:
    """What a suite's scorer returns: headline metrics (numbers), breakdown tables
    ({table: {key: number}}), descriptions of the metrics, and one row per scored item."""

    metrics: dict[str, float]
    breakdown: dict[str, dict[str, float]]
    info: dict[str, Any]
    rows: list[dict[str, Any]]  # id, output, reference, score (the primary metric), extras


@dataclass
class Task:
    """A suite ready to run: items {"id", "prompt", "payload", ...}, how to answer a payload
    ("generate": the payload is a prompt; "loglik": {"context", "continuations"}), the sampling
    settings, and a scorer of (items, outputs) for the items that succeeded."""

    suite: str
    items: list[dict[str, Any]]
    score: Callable[[list[dict[str, Any]], list[Any]], Scored]
    primary: str
    kind: str = "generate"
    sampling: dict[str, Any] = field(default_factory=dict)
    data: str | Path | None = None
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    outputs: dict[str, Any] = field(default_factory=dict)  # id → output, succeeded items only
    failures: dict[str, str] = field(default_factory=dict)  # id → last error message
    cached: int = 0  # items answered from the cache

    def counts(self, items: int) -> dict[str, int]:
        """results.json's "counts": items asked for, scored (answered), failed, from the cache."""
        return {
            "items": items,
            "scored": len(self.outputs),
            "failed": len(self.failures),
            "cached": self.cached,
        }


class ItemCache:
    """Outputs by item id on disk (JSONL, appended line by line); a torn last line is ignored."""

    def __init__(self, path: str | Path, salt: str = ""):
        self.path = Path(path)
        self.salt = salt
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, Any]] = {}
        if self.path.is_file():
            text = self.path.read_text(encoding="utf-8")
            for _, entry in read_json_lines(text, lenient=True):  # a killed run's torn line
                try:
                    self._entries[str(entry["id"])] = (entry["key"], entry["output"])
                except (KeyError, TypeError):
                    continue

    def key(self, payload: Any) -> str:
        text = json.dumps([self.salt, payload], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

    def get(self, item_id: str, payload: Any) -> tuple[bool, Any]:
        entry = self._entries.get(item_id)
        if entry is not None and entry[0] == self.key(payload):
            return True, entry[1]
        return False, None

    def put(self, item_id: str, payload: Any, output: Any) -> None:
        key = self.key(payload)
        line = json.dumps({"id": item_id, "key": key, "output": output}, ensure_ascii=False)
        with self._lock:
            self._entries[item_id] = (key, output)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()

    def compact(self, items: Sequence[tuple[str, Any]]) -> None:
        """Rewrite the file with only the current entries of `items` (drops stale outputs)."""
        lines = []
        for item_id, payload in items:
            hit, output = self.get(item_id, payload)
            if hit:
                lines.append(
                    json.dumps(
                        {"id": item_id, "key": self.key(payload), "output": output},
                        ensure_ascii=False,
                    )
                )
        with self._lock:
            atomic_write_text(self.path, "".join(line + "\n" for line in lines))


def run_items(
    items: Sequence[tuple[str, Any]],
    call: Call,
    *,
    cache: ItemCache | None = None,
    batch_size: int = 16,
    workers: int = 1,
    retries: int = 2,
    backoff: float = 0.5,
    progress: bool = True,
    desc: str = "evaluate",
) -> Outcome:
    """Answer every item not already in `cache`: `batch_size` payloads per call, `workers` calls
    at a time. A failed batch is halved until the items at fault stand alone; one item is tried
    1 + `retries` times (a local UserError, such as a prompt longer than the context, once),
    waiting backoff · 2^attempt seconds between tries. A ConfigError (a bad setting, the same for
    every item) is raised at once instead."""
    ids = [item_id for item_id, _ in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique")
    if batch_size < 1 or workers < 1 or retries < 0:
        raise ConfigError("batch_size and workers must be >= 1, retries >= 0")
    outcome, pending = _from_cache(items, cache)

    from tqdm import tqdm

    bar = tqdm(
        total=len(items), initial=outcome.cached, desc=desc, unit="item", disable=not progress
    )
    asker = _Asker(call, cache, outcome, bar, retries=retries, backoff=backoff)
    chunks = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
    try:
        if workers == 1:
            for chunk in chunks:
                asker.batch(chunk)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for future in [pool.submit(asker.batch, chunk) for chunk in chunks]:
                    future.result()
    finally:
        bar.close()
    return outcome


def run_cached(
    items: Sequence[tuple[str, Any]], call: Call, cache: ItemCache, **options: Any
) -> Outcome:
    """run_items(items, call, cache=cache, **options), then rewrite the cache with only these
    items' current outputs: what a suite or a judge run does."""
    outcome = run_items(items, call, cache=cache, **options)
    cache.compact(items)
    return outcome


def _from_cache(
    items: Sequence[tuple[str, Any]], cache: ItemCache | None
) -> tuple[Outcome, list[tuple[str, Any]]]:
    """(an Outcome holding the items the cache answers, the items still to ask)."""
    outcome, pending = Outcome(), []
    for item_id, payload in items:
        hit, output = cache.get(item_id, payload) if cache is not None else (False, None)
        if hit:
            outcome.outputs[item_id] = output
            outcome.cached += 1
        else:
            pending.append((item_id, payload))
    return outcome, pending


class _Asker:
    """Asks `call` for batches of items, records each answer or error in `outcome` (and each
    answer in `cache`), and advances the progress bar; safe to use from several threads."""

    def __init__(
        self,
        call: Call,
        cache: ItemCache | None,
        outcome: Outcome,
        bar: Any,
        *,
        retries: int,
        backoff: float,
    ):
        self.call, self.cache, self.outcome, self.bar = call, cache, outcome, bar
        self.retries, self.backoff = retries, backoff
        self.lock = threading.Lock()

    def batch(self, chunk: list[tuple[str, Any]]) -> None:
        """Answer a batch in one call; if it fails, halve it until the items at fault stand
        alone (each then tried on its own)."""
        if len(chunk) == 1:
            self.one(*chunk[0])
            return
        try:
            outputs = _checked(self.call([p for _, p in chunk]), len(chunk))
        except ConfigError:
            raise
        except Exception:  # halve the batch until the item(s) at fault stand alone
            half = len(chunk) // 2
            self.batch(chunk[:half])
            self.batch(chunk[half:])
            return
        for (item_id, payload), output in zip(chunk, outputs):
            self.done(item_id, payload, output)

    def one(self, item_id: str, payload: Any) -> None:
        """Answer one item: 1 + retries tries (one for a non-transient error), waiting
        backoff · 2^attempt seconds between them; the last error is recorded."""
        error = ""
        for attempt in range(1 + self.retries):
            try:
                output = _checked(self.call([payload]), 1)[0]
            except ConfigError:
                raise
            except Exception as exc:  # any failure of one item: retry, then report it
                error = f"{type(exc).__name__}: {exc}"
                if not _transient(exc):
                    break
                if attempt < self.retries and self.backoff > 0:
                    time.sleep(self.backoff * 2**attempt)
                continue
            self.done(item_id, payload, output)
            return
        self.done(item_id, payload, error=error)

    def done(
        self, item_id: str, payload: Any, output: Any = None, error: str | None = None
    ) -> None:
        """Record an item's output (and cache it) or its error."""
        if error is None and self.cache is not None:
            self.cache.put(item_id, payload, output)
        with self.lock:
            if error is None:
                self.outcome.outputs[item_id] = output
            else:
                self.outcome.failures[item_id] = error
            self.bar.update(1)


def _transient(exc: Exception) -> bool:
    """Worth another try: anything but a UserError raised locally (a prompt longer than the
    context stays too long); a remote API's errors (RemoteError) may pass."""
    from instructgen.inference.openai_backend import RemoteError

    return not isinstance(exc, UserError) or isinstance(exc, RemoteError)


def _checked(outputs: list[Any], expected: int) -> list[Any]:
    if len(outputs) != expected:
        raise RuntimeError(f"expected {expected} outputs, got {len(outputs)}")
    return outputs


def spread(records: Sequence[Any], limit: int | None) -> list[Any]:
    """Every k-th record (k = ⌊n / limit⌋), at most `limit`: a small run still covers every
    family and language of an ordered file. limit None: all."""
    if limit is None or limit >= len(records):
        return list(records)
    if limit < 1:
        raise ConfigError(f"must be >= 1, got {limit}", field="limit")
    step = max(1, len(records) // limit)
    return list(records[::step][:limit])
