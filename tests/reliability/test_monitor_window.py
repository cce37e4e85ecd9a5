"""One large request no longer disables monitoring (issue case 17): a check tests a uniform sample of
at most ``monitoring.max_window`` logged rows, and reads only the requests that hold them; a window of
many requests is scanned in chunks, with the same result as at once."""

from pathlib import Path

import numpy as np

from components.serving import request_log
from components.serving.request_log import RequestLog, read_window


def test_a_window_is_sampled_uniformly_from_the_rows_of_every_request(tmp_path: Path):
    log = RequestLog(tmp_path / "requests.db")
    sizes = [5, 100_000, 5]
    start = 0
    for size in sizes:
        rows = np.arange(start, start + size, dtype=np.float32)[:, None]
        log.record("m", "1", rows, rows * 2, [], latency_ms=1.0)
        start += size
    log.close()

    window = read_window(tmp_path / "requests.db", since=0.0, max_rows=500)
    assert window.total_rows == 100_010 and window.requests == 3 and len(window.latency_ms) == 3
    values = window.inputs[:, 0]
    assert len(values) == 500 and len(np.unique(values)) == 500  # rows drawn without replacement
    assert np.array_equal(window.outputs[:, 0], values * 2)  # each row with the output logged for it
    assert 0.4 < np.mean(values < 50_005) < 0.6  # both halves of the large request, not its first rows
    small = read_window(tmp_path / "requests.db", since=0.0, max_rows=200_000)
    assert np.array_equal(np.sort(small.inputs[:, 0]), np.arange(100_010))  # a smaller window is read whole


def test_a_window_of_many_requests_is_read_in_chunks_with_a_sample_of_latencies(tmp_path: Path, monkeypatch):
    log = RequestLog(tmp_path / "requests.db")
    sizes = np.random.default_rng(1).integers(1, 6, 300)
    start = 0
    for index, size in enumerate(sizes):
        rows = np.arange(start, start + size, dtype=np.float32)[:, None]
        log.record("m", "1", rows, rows + 0.5, [], latency_ms=float(index))
        start += size
    log.close()
    whole = read_window(tmp_path / "requests.db", since=0.0, max_rows=10_000)
    monkeypatch.setattr(request_log, "READ_CHUNK", 7)  # chunk ends fall inside the scan
    monkeypatch.setattr(request_log, "LATENCY_SAMPLE", 50)
    chunked = read_window(tmp_path / "requests.db", since=0.0, max_rows=10_000)
    assert np.array_equal(chunked.inputs, whole.inputs) and np.array_equal(whole.inputs[:, 0], np.arange(sizes.sum()))
    assert np.array_equal(chunked.outputs, whole.inputs + 0.5)  # each row with its own output
    assert chunked.requests == 300 and chunked.total_rows == sizes.sum()
    assert len(chunked.latency_ms) == 50 and len(np.unique(chunked.latency_ms)) == 50 and chunked.latency_ms.max() > 200
    sampled = read_window(tmp_path / "requests.db", since=0.0, max_rows=100)
    assert len(sampled.inputs) == 100 and np.array_equal(sampled.outputs, sampled.inputs + 0.5)
