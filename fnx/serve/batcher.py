"""Dynamic batching for one model: requests wait in a bounded queue, and one engine thread runs them together.

A batch closes when it holds `max_batch` samples or when `max_delay_s` has passed since its first request came
off the queue, whichever is first. A full queue refuses at once (`Overloaded`: the server answers 503 with
Retry-After) instead of holding unbounded memory. Requests whose client went away are dropped before the engine
sees them.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np


class Overloaded(Exception):
    """The model's queue is full: try again after `retry_after` seconds."""

    def __init__(self, model: str, depth: int, retry_after: int = 1):
        super().__init__(f"model {model!r} has {depth} request(s) queued, its limit (fnx serve --queue); "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


class Runner(Protocol):
    def run(self, array: np.ndarray) -> list[np.ndarray]: ...


@dataclass
class _Item:
    array: np.ndarray
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Batches one model's requests onto its Session; start() and stop() run inside the server's event loop."""

    def __init__(self, name: str, session: Runner, max_batch: int = 8, max_delay_s: float = 0.005,
                 queue_size: int = 64, observe: Callable[[int, float], None] | None = None,
                 depth: Callable[[int], None] | None = None):
        if max_batch < 1 or queue_size < 1 or max_delay_s < 0:
            raise ValueError("max_batch and queue_size must be >= 1 and max_delay_s >= 0")
        self.name, self.session = name, session
        self.max_batch, self.max_delay_s, self.queue_size = max_batch, max_delay_s, queue_size
        self._observe = observe or (lambda size, seconds: None)  # (batch size, engine seconds) per batch
        self._depth = depth or (lambda n: None)  # queue depth after each change
        self._queue: asyncio.Queue[_Item] | None = None
        self._carry: _Item | None = None  # a request that did not fit the last batch: it opens the next one
        self._task: asyncio.Task | None = None
        self._busy = False  # a batch is on the engine
        self._engine = ThreadPoolExecutor(1, thread_name_prefix=f"fnx-serve-{name}")  # one Session, one thread

    @property
    def depth(self) -> int:
        """Requests waiting (not yet on the engine)."""
        return (self._queue.qsize() if self._queue is not None else 0) + (self._carry is not None)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.create_task(self._loop(), name=f"fnx-batcher-{self.name}")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued (up to timeout_s), then stop the loop and the engine thread."""
        if self._task is None:
            return
        deadline = time.monotonic() + timeout_s
        while (self._queue.qsize() or self._carry is not None or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._engine.shutdown(wait=True)

    async def submit(self, array: np.ndarray) -> list[np.ndarray]:
        """Return the Session's outputs for this request's batch (N, ...), run together with other requests."""
        if not self.running:
            raise RuntimeError(f"the batcher of model {self.name!r} is not running")
        item = _Item(array, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Overloaded(self.name, self._queue.qsize()) from None
        self._depth(self._queue.qsize())
        return await item.future

    async def _next(self, timeout: float | None) -> _Item | None:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout is None:
            item = await self._queue.get()
        elif timeout <= 0:
            item = self._queue.get_nowait() if self._queue.qsize() else None
        else:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                item = None
        if item is not None:
            self._depth(self._queue.qsize())
        return item

    async def _collect(self) -> list[_Item]:
        first = await self._next(None)
        batch, n = [first], len(first.array)
        close_at = time.perf_counter() + self.max_delay_s
        while n < self.max_batch:
            item = await self._next(close_at - time.perf_counter())
            if item is None:
                break
            if n + len(item.array) > self.max_batch:
                self._carry = item
                break
            batch.append(item)
            n += len(item.array)
        return [b for b in batch if not b.future.done()]  # a cancelled request (its client left) is not run

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            self._busy = True
            try:
                await self._run(loop, batch)
            finally:
                self._busy = False

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        x = batch[0].array if len(batch) == 1 else np.concatenate([b.array for b in batch])
        t0 = time.perf_counter()
        try:
            outs = await loop.run_in_executor(self._engine, self.session.run, x)
        except Exception as e:  # the engine failed this batch: each of its requests gets the error
            for b in batch:
                if not b.future.done():
                    b.future.set_exception(e)
            return
        self._observe(len(x), time.perf_counter() - t0)
        start = 0
        for b in batch:
            stop = start + len(b.array)
            if not b.future.done():
                b.future.set_result([o[start:stop] for o in outs])
            start = stop
