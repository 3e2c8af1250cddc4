"""Continuous batching for the server: one model thread drives Engine.step, asyncio serves HTTP.

Every step decodes one token for every running sequence; requests that arrived since the last
step are admitted (prefilled) at its end, and sequences that finished leave the batch at once,
so a short request never waits for a long one to end. The asyncio side never runs model work:
it hands a request to a worker thread (encoding, grammar compilation and Engine.add_request),
then awaits its outputs on a Stream that the model thread fills once per step.

    scheduler = Scheduler(lambda: Engine.from_dir(model_dir), max_queue=256)
    scheduler.start()                               # inside the running event loop
    stream = await scheduler.submit([Submission(prompt_ids, params)])
    while not stream.exhausted:
        for item in await stream.get(): ...         # "output" / "done" / "error" items
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from instructgen.errors import UserError
from instructgen.inference.engine import Engine, Request, StepOutput
from instructgen.inference.sampling import SamplingParams

__all__ = ["Item", "NotReady", "QueueFull", "Scheduler", "Stream", "Submission"]

log = logging.getLogger("instructgen.serve")


class QueueFull(UserError):
    """Every queue slot is taken: answer 429 and ask the client to retry."""

    status_code = 429
    code = "rate_limit_exceeded"
    retry_after = 1


class NotReady(UserError):
    """The model is still loading (or failed to load): answer 503."""

    status_code = 503
    code = "model_not_ready"
    retry_after = 5


@dataclass
class Submission:
    """One prompt to generate for: token ids, sampling, and role ids for role-embedding models."""

    prompt_ids: list[int]
    params: SamplingParams
    role_ids: list[int] | None = None


@dataclass
class Item:
    """What a Stream yields: a step output, the end of a prompt's request, or an error."""

    kind: str  # "output" | "done" | "error"
    prompt: int = 0  # index of the Submission it belongs to
    output: StepOutput | None = None
    request: Request | None = None
    error: str | None = None
    status: int = 500  # of an error: 500 generation failed, 503 the server is stopping


class Stream:
    """The outputs of one HTTP request's engine requests, delivered in step order."""

    def __init__(self, size: int):
        self.size = size
        self.request_ids: list[str] = []
        self.requests: list[Request | None] = [None] * size
        self.done = 0
        self.failed: Item | None = None
        self._items: deque[Item] = deque()
        self._event = asyncio.Event()

    @property
    def finished(self) -> bool:
        """Every request ended (or one failed); what is left to read is in the queue."""
        return self.failed is not None or self.done == self.size

    @property
    def exhausted(self) -> bool:
        return self.finished and not self._items

    def push(self, items: list[Item]) -> None:
        """Called on the event loop's thread only."""
        for item in items:
            if item.kind == "done":
                self.requests[item.prompt] = item.request
                self.done += 1
            elif item.kind == "error" and self.failed is None:
                self.failed = item
        self._items.extend(items)
        self._event.set()

    async def get(self) -> list[Item]:
        """Everything delivered since the last call; waits while there is nothing."""
        while not self._items:
            if self.finished:
                return []
            self._event.clear()
            await self._event.wait()
        items = list(self._items)
        self._items.clear()
        return items


@dataclass
class _Entry:
    stream: Stream
    index: int
    submitted: float = field(default_factory=time.monotonic)
    started: bool = False


def default_threads(cores: int | None = None) -> int:
    """Torch threads for the model thread: every core on small machines, where the HTTP side
    needs little and a core less is a large share of the compute (on 2 cores, 32 concurrent
    streams finish in 1.5 s instead of 2.1 s); one core kept for HTTP above 4 cores."""
    cores = cores or os.cpu_count() or 1
    return cores if cores <= 4 else cores - 1


class Scheduler:
    """Owns the Engine: a model thread steps it while any request is unfinished.

    max_queue bounds the requests waiting for a batch slot (the batch itself holds
    engine.max_batch_size sequences); a submission beyond it raises QueueFull.
    """

    def __init__(
        self,
        load: Callable[[], Engine],
        *,
        max_queue: int = 256,
        threads: int | None = None,
        observer: Callable[..., None] | None = None,
    ):
        self._load = load
        self.max_queue = max_queue
        self.threads = threads if threads is not None else default_threads()
        self.observe = observer or (lambda *args, **kwargs: None)
        self.engine: Engine | None = None
        self.error: str | None = None
        self.waiting = 0  # submitted requests not yet in the batch
        self.running = 0  # requests in the batch
        self._cond = threading.Condition()  # guards the table and counts; wakes the model thread
        self._table: dict[str, _Entry] = {}
        self._closing = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ready(self) -> bool:
        return self.engine is not None and self.error is None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the model thread (it loads the engine first); call from the event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="instructgen-model", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the model thread; requests still in flight end with an error item."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            streams = {e.stream for e in self._table.values()}
            self._table.clear()
            self.waiting = self.running = 0
        for stream in streams:
            stream.push([Item("error", error="the server is shutting down", status=503)])

    # -- the asyncio side ----------------------------------------------------------------------

    async def submit(self, submissions: list[Submission]) -> Stream:
        """Queue the prompts (all or none); their outputs arrive on the returned Stream."""
        if not self.ready:
            raise NotReady(self.error or "the model is loading; retry in a few seconds")
        count = len(submissions)
        if count > self.max_queue:
            raise UserError(
                f"a request may hold at most {self.max_queue} prompts (the server's queue "
                f"size), got {count}",
                field="prompt",
            )
        with self._cond:
            if self.waiting + count > self.max_queue:
                raise QueueFull(
                    f"the server is busy: {self.waiting} requests are waiting "
                    f"(queue size {self.max_queue}); retry shortly"
                )
            self.waiting += count
        stream = Stream(count)
        await anyio.to_thread.run_sync(self._add, stream, submissions)
        return stream

    def cancel(self, stream: Stream) -> None:
        """Abort a stream's unfinished requests (client gone); their batch rows are freed."""
        with self._cond:
            for request_id in stream.request_ids:
                entry = self._table.pop(request_id, None)
                if entry is None:
                    continue
                if entry.started:
                    self.running -= 1
                else:
                    self.waiting -= 1
                if self.engine is not None:
                    self.engine.abort(request_id)
            self._cond.notify()

    def _add(self, stream: Stream, submissions: list[Submission]) -> None:
        """Worker thread: add every submission to the engine; on an error add none."""
        assert self.engine is not None
        try:
            for index, sub in enumerate(submissions):
                request_id = f"req-{uuid.uuid4().hex}"
                with self._cond:
                    self._table[request_id] = _Entry(stream, index)
                    stream.request_ids.append(request_id)
                self.engine.add_request(
                    sub.prompt_ids,
                    sub.params,
                    request_id=request_id,
                    role_ids=sub.role_ids,
                    stream=True,
                )
                with self._cond:
                    self._cond.notify()
        except BaseException:
            self.cancel(stream)
            with self._cond:
                self.waiting -= len(submissions) - len(stream.request_ids)
            raise

    # -- the model thread ----------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        try:
            engine = self._load()
        except Exception as exc:  # reported by /health; the server keeps answering 503
            log.error("the model failed to load: %s", exc)
            self.error = f"the model failed to load: {exc}"
            return
        self.engine = engine
        log.info("model loaded; serving")
        while True:
            with self._cond:
                while not self._closing and not engine.has_unfinished():
                    self._cond.wait()
                if self._closing:
                    return
            try:
                outputs = engine.step()
            except Exception:
                log.exception("a generation step failed; failing the requests in flight")
                self._fail_all("internal error during generation")
                time.sleep(0.05)
                continue
            self._dispatch(outputs)

    def _dispatch(self, outputs: list[StepOutput]) -> None:
        batch: dict[Stream, list[Item]] = {}
        ended: dict[str, tuple[_Entry, Request]] = {}
        now = time.monotonic()
        first_tokens, prompt_tokens, generated = [], 0, 0
        with self._cond:
            for out in outputs:
                entry = self._table.get(out.request.id)
                if entry is None:  # cancelled
                    continue
                if not entry.started:
                    entry.started = True
                    self.waiting -= 1
                    self.running += 1
                    first_tokens.append(now - entry.submitted)
                    prompt_tokens += len(out.request.prompt_ids)
                if out.finish_reason == "error":  # this request alone failed: end it, not others
                    del self._table[out.request.id]
                    self.running -= 1
                    self.engine.abort(out.request.id)  # its other samples (n > 1) stop too
                    message = out.request.error or "generation failed"
                    batch.setdefault(entry.stream, []).append(
                        Item("error", entry.index, error=message)
                    )
                    continue
                batch.setdefault(entry.stream, []).append(Item("output", entry.index, output=out))
                if out.finish_reason is not None and out.request.finished:
                    ended[out.request.id] = (entry, out.request)
            for request_id, (entry, request) in ended.items():
                if self._table.pop(request_id, None) is None:  # it failed later in this step
                    continue
                self.running -= 1
                generated += sum(s.num_generated for s in request.sequences)
                batch[entry.stream].append(Item("done", entry.index, request=request))
        self.observe(
            batch_size=len(outputs),
            first_tokens=first_tokens,
            prompt_tokens=prompt_tokens,
            generated_tokens=generated,
        )
        if batch:
            self._deliver(batch)

    def _fail_all(self, message: str) -> None:
        with self._cond:
            entries = list(self._table.items())
            self._table.clear()
            self.waiting = self.running = 0
        batch: dict[Stream, list[Item]] = {}
        for request_id, entry in entries:
            if self.engine is not None:
                self.engine.abort(request_id)
            batch.setdefault(entry.stream, []).append(Item("error", entry.index, error=message))
        self._deliver(batch)

    def _deliver(self, batch: dict[Stream, list[Item]]) -> None:
        """Hand a step's items to the event loop: one wake-up per step, not per token."""
        if not batch or self._loop is None:
            return

        def deliver() -> None:
            for stream, items in batch.items():
                stream.push(items)

        try:
            self._loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop has closed: the server is gone
            pass
