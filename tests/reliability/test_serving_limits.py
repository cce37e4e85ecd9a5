"""What one request may cost the server (issue cases 7, 9 and 15), and what it says when the champion
cannot be loaded: every limit refuses with a 4xx that names it, and /metrics counts it."""

import base64
import io
import sqlite3
import time
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from PIL import Image

from components.serving.limits import RequestLimits
from components.serving.request_log import RequestLog, prune
from tests.components.test_serving import client_for, register


def _png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_chunked_body_is_counted_not_trusted(store: Path):
    register(store, "table", "mlp", seed=0)
    chunks = (b'{"rows": [' + b"[1.0, 2.0, 3.0]," * 5000 for _ in range(10))  # no Content-Length header
    with client_for(store, "table", limits=RequestLimits(max_body_bytes=100_000)) as client:
        answer = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
        assert answer.status_code == 413 and "more than 100,000 bytes exceeds the limit" in answer.text, answer.text
        assert 'dlautoml_errors_total{kind="too_large"} 1.0' in client.get("/metrics").text
        assert client.post("/predict", json={"rows": [[1, 2, 3]]}).status_code == 200


def test_rows_images_and_pixels_per_request_are_bounded(store: Path, monkeypatch):
    register(store, "table", "mlp", seed=0)
    register(store, "pictures", "cnn", seed=0)
    with client_for(store, "table", limits=RequestLimits(max_inputs=100)) as client:
        answer = client.post("/predict", json={"rows": [[1.0, 2.0, 3.0]] * 101})
        assert answer.status_code == 413 and "101 rows; the limit is 100 per request" in answer.text
    with client_for(store, "pictures", limits=RequestLimits(max_inputs=3, max_image_pixels=64 * 64)) as client:
        assert client.post("/predict", json={"images": [_png(12, 12)] * 4}).status_code == 413
        large = client.post("/predict", json={"images": [_png(12, 12), _png(65, 64)]})
        assert large.status_code == 413 and "image 1 is 65x64 pixels" in large.text
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # beyond PIL's own limit, PIL refuses to open it
        bomb = client.post("/predict", json={"images": [_png(60, 60)]})
        assert bomb.status_code == 413 and "too large to decode" in bomb.text
        assert 'dlautoml_errors_total{kind="too_large"} 3.0' in client.get("/metrics").text


def test_a_payload_that_is_not_json_compliant_is_a_422(store: Path):
    register(store, "pictures", "cnn", seed=0)
    with client_for(store, "pictures") as client:
        answer = client.post("/predict", content=b'{"images": NaN}', headers={"content-type": "application/json"})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "images"]


def test_a_champion_that_cannot_be_loaded_degrades_health(store: Path):
    register(store, "table", "mlp", seed=0)
    register(store, "table", "mlp", seed=1, set_alias=False)
    broken = MlflowClient().get_model_version("table", "2")
    for path in Path(store / "artifacts").rglob("*.onnx"):
        if broken.run_id in str(path) or broken.source.rstrip("/").split("/")[-1] in str(path):
            path.unlink()
    with client_for(store, "table") as client:
        MlflowClient().set_registered_model_alias("table", "champion", "2")
        for _ in range(100):
            health = client.get("/health").json()
            if health["status"] == "degraded":
                break
            time.sleep(0.1)
        assert health["status"] == "degraded" and health["version"] == "1" and health["alias_version"] == "2", health
        assert health["load_failures"] >= 3 and "no ONNX file" in health["load_error"]
        answer = client.post("/predict", json={"rows": [[1, 2, 3]]})
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        counted = [
            line for line in client.get("/metrics").text.splitlines() if line.startswith("dlautoml_model_load_failures_total")
        ]
        assert float(counted[0].split()[-1]) >= 3


def test_the_request_log_drops_what_its_writer_cannot_keep_up_with(tmp_path: Path):
    log = RequestLog(tmp_path / "requests.db", max_pending=5)
    blocker = sqlite3.connect(tmp_path / "requests.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the disk stalls: the writer waits
    queued = [log.record("m", "1", np.zeros((1, 3)), np.zeros((1, 2)), [], 1.0) for _ in range(30)]
    blocker.rollback()
    log.close()
    assert log.dropped == queued.count(False) and 20 <= log.dropped <= 25
    with sqlite3.connect(tmp_path / "requests.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 30 - log.dropped


def test_old_unlabelled_requests_are_pruned(tmp_path: Path):
    log = RequestLog(tmp_path / "requests.db")
    for index in range(4):
        log.record("m", "1", np.zeros((500, 30)), np.zeros((500, 2)), [], 1.0, request_id=f"r{index}")
    log.close()
    with sqlite3.connect(tmp_path / "requests.db") as connection:
        connection.execute("UPDATE requests SET received_at = received_at - 40 * 86400 WHERE request_id != 'r3'")
        connection.execute("INSERT INTO feedback VALUES ('r0', 0, 'yes', 0)")
        connection.commit()
        assert prune(connection, retention_days=30) == 2  # r1 and r2: old and unlabelled
        kept = [row[0] for row in connection.execute("SELECT request_id FROM requests ORDER BY id")]
    assert kept == ["r0", "r3"]
