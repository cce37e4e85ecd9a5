"""Dynamic micro-batching: concurrent requests are run through the model together.

Requests wait at most ``max_wait_ms`` for company and a batch holds at most ``max_batch_size``
rows (a larger request runs alone). Inference runs on one dedicated thread, so decoding and
validation on the event loop and the request thread pool never stall it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Predict = Callable[[np.ndarray], tuple[np.ndarray, str]]


class MicroBatcher:
    def __init__(self, predict: Predict, max_batch_size: int, max_wait_ms: float, on_batch: Callable[[int], None] | None = None):
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.queue: asyncio.Queue = asyncio.Queue()
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

    async def submit(self, inputs: np.ndarray) -> tuple[np.ndarray, str]:
        """Queues the rows of one request and returns its outputs and the model version that made them."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((inputs, future))
        return await future

    async def _collect(self) -> list:
        loop = asyncio.get_running_loop()
        items = [await self.queue.get()]
        rows = len(items[0][0])
        deadline = loop.time() + self.max_wait
        while rows < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(self.queue.get(), remaining)
            except TimeoutError:
                break
            items.append(item)
            rows += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            batch = np.concatenate([inputs for inputs, _ in items])
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                outputs, version = await loop.run_in_executor(self.executor, self.predict, batch)
            except Exception as error:  # every waiting request learns of the failure
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            offset = 0
            for inputs, future in items:
                if not future.done():
                    future.set_result((outputs[offset : offset + len(inputs)], version))
                offset += len(inputs)
