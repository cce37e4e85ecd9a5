"""One large request no longer disables monitoring (issue case 17): a check tests a uniform sample of
at most ``monitoring.max_window`` logged rows, and reads only the requests that hold them."""

from pathlib import Path

import numpy as np

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
    assert window.total_rows == 100_010 and list(window.rows) == sizes and len(window.received_at) == 3
    values = window.inputs[:, 0]
    assert len(values) == 500 and len(np.unique(values)) == 500  # rows drawn without replacement
    assert np.array_equal(window.outputs[:, 0], values * 2)  # each row with the output logged for it
    assert 0.4 < np.mean(values < 50_005) < 0.6  # both halves of the large request, not its first rows
    small = read_window(tmp_path / "requests.db", since=0.0, max_rows=200_000)
    assert np.array_equal(np.sort(small.inputs[:, 0]), np.arange(100_010))  # a smaller window is read whole
