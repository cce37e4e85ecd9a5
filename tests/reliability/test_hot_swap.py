"""A hot swap never mixes versions (issue case 8): a request is decoded and predicted by the model
captured when it arrived, and the micro-batcher batches requests of one model object only. The load
test under a promotion and a rollback is `benchmarks/serving.py --swap`; the swap under load with
real models is tests/components/test_serving.py::test_champion_switch_under_load_fails_no_request."""

import asyncio

import numpy as np

from components.serving.batcher import MicroBatcher


def test_micro_batcher_groups_concurrent_requests_and_returns_each_its_rows():
    """Requests are batched with others of the same model version only: a batch never mixes the
    version that decoded a request with another (issue 15, case 8)."""
    batch_sizes: list[int] = []
    batches: list[tuple[str, int]] = []
    doubling, tripling = "double", "triple"

    def predict(batch: np.ndarray, model: str):
        batches.append((model, len(batch)))
        return batch * (2 if model == doubling else 3)

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=20, on_batch=batch_sizes.append)
        batcher.start()
        requests = [np.full((1 + index % 3, 2), index, dtype=np.float32) for index in range(20)]
        models = [doubling if index % 4 else tripling for index in range(20)]
        answers = await asyncio.gather(*(batcher.submit(request, model) for request, model in zip(requests, models)))
        await batcher.stop()
        return requests, models, answers

    requests, models, answers = asyncio.run(scenario())
    for request, model, outputs in zip(requests, models, answers):
        assert np.array_equal(outputs, request * (2 if model == doubling else 3))
    assert sum(batch_sizes) == sum(len(request) for request in requests)
    assert max(batch_sizes) > 1 and len(batch_sizes) < len(requests)
    assert {model for model, _ in batches} == {doubling, tripling}
