"""Dynamic micro-batching: concurrent requests are run through the model together.

Requests wait at most ``max_wait_ms`` for company and a batch holds at most ``max_batch_size``
rows (a larger request runs alone). Inference runs on one dedicated thread, so decoding and
validation on the event loop and the request thread pool never stall it.

Each request comes with the model version that decoded it, and a batch holds requests of one version
only: while a new version is swapped in, a request is never decoded by one version and predicted by
another (their vocabularies or input shapes may differ).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray, Any], np.ndarray]  # a batch and the model that predicts it


class MicroBatcher:
    def __init__(self, predict: Predict, max_batch_size: int, max_wait_ms: float, on_batch: Callable[[int], None] | None = None):
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self._held: list = []  # requests of another version than the batch being collected, first in the next
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, inputs: np.ndarray, model: Any) -> np.ndarray:
        """Queues the rows of one request, to be predicted by ``model``, and returns their outputs."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((inputs, model, future))
        return await future

    async def _next(self, timeout: float | None = None):
        if self._held:
            return self._held.pop(0)
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def _collect(self) -> list:
        loop = asyncio.get_running_loop()
        items = [await self._next()]
        model, rows = items[0][1], len(items[0][0])
        deadline = loop.time() + self.max_wait
        while rows < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await self._next(remaining)
            except TimeoutError:
                break
            if item[1] is not model:
                self._held.append(item)
                break
            items.append(item)
            rows += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            batch = np.concatenate([inputs for inputs, _, _ in items])
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                outputs = await loop.run_in_executor(self.executor, self.predict, batch, items[0][1])
            except Exception as error:  # every waiting request learns of the failure
                for _, _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            offset = 0
            for inputs, _, future in items:
                if not future.done():
                    future.set_result(outputs[offset : offset + len(inputs)])
                offset += len(inputs)
