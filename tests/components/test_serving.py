"""The serving endpoint on a real registered ONNX model: predictions, refusals, metrics, the request
log, micro-batching under concurrency, and a champion switch under load."""

import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from PIL import Image

from components.data.preparation import Preprocessor
from components.deployment.onnx_export import export_onnx
from components.deployment.registry import register_onnx_model
from components.deployment.wrapper import DeployableModel
from components.models.cnn_space import smallest_architecture
from components.models.families import build_network
from components.monitoring.production import server_figures
from components.serving.app import ServingConfig, create_app
from components.serving.limits import RequestLimits
from components.serving.request_log import RequestLog, read_requests

FEATURES = ["a", "b", "c"]


def register(tmp_path: Path, name: str, family: str, seed: int, set_alias: bool = True) -> str:
    torch.manual_seed(seed)
    if family == "mlp":
        raw = np.random.default_rng(seed).normal(size=(32, 3)).astype(np.float32)
        network = build_network("mlp", [3], 2, {"depth": 1, "width": 8, "activation": "relu", "dropout": 0.0})
        metadata = {"modality": "tabular", "feature_names": FEATURES, "input_shape": [3]}
    else:
        raw = np.random.default_rng(seed).integers(0, 255, size=(16, 1, 8, 8)).astype(np.float32)
        network = build_network("cnn", [1, 8, 8], 2, smallest_architecture([1, 8, 8]))
        metadata = {"modality": "image", "feature_names": ["pixel_0"], "input_shape": [1, 8, 8]}
    model = DeployableModel(network.eval(), Preprocessor.fit(raw, metadata["modality"]), "classification").eval()
    path = export_onnx(model, raw, tmp_path / f"{name}-{seed}.onnx")
    metadata.update({"task_type": "classification", "class_names": ["no", "yes"], "serving_threads": 1, "max_batch_size": 16})
    with mlflow.start_run():
        registration = register_onnx_model(path, name, raw[:2], {"data_version": "test"}, metadata, set_alias=set_alias)
    return registration.version


def client_for(store: Path, name: str, **options) -> TestClient:
    config = ServingConfig(model_name=name, request_log=store / "requests.db", reload_seconds=0.2, **options)
    return TestClient(create_app(config))


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size=(12, 12)).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_table_predictions_metrics_and_request_log(store: Path):
    register(store, "table", "mlp", seed=0)
    signature = mlflow.models.get_model_info("models:/table/1").signature  # the registry shows its schema
    assert signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 3)}, "name": "input"}
    ]
    assert signature.outputs.to_dict()[0]["name"] == "probabilities"
    with client_for(store, "table") as client:
        assert client.get("/health").json() == {"status": "ok", "model": "table", "version": "1", "alias": "champion"}
        answer = client.post("/predict", json={"rows": [[0.1, 0.2, None], {"a": 1, "b": 2, "c": 3}]})
        assert answer.status_code == 200
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2 and all(p["label"] in ("no", "yes") for p in predictions)
        assert sum(predictions[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        metrics = client.get("/metrics").text
        assert 'dlautoml_requests_total{status="ok"} 1.0' in metrics
        assert 'dlautoml_model_version{model="table"} 1.0' in metrics
        assert "process_resident_memory_bytes" in metrics and "process_cpu_seconds_total" in metrics
        assert client.post("/predict", json={"rows": [[1, 2]]}).status_code == 400
        assert client.post("/predict", json={"rows": "not rows"}).status_code == 422
        figures = server_figures(client.get("/metrics").text)  # what the monitor reads
        assert figures["answered"] == 1.0 and figures["errors"] == 2.0
        assert figures["memory_bytes"] > 10 * 2**20 and figures["cpu_seconds"] > 0
    logged = read_requests(store / "requests.db")
    assert len(logged) == 1 and logged[0]["rows"] == 2 and logged[0]["model_version"] == "1"
    assert np.isnan(logged[0]["inputs"][0, 2]) and logged[0]["inputs"][1].tolist() == [1.0, 2.0, 3.0]
    with client_for(store, "table") as client:  # a restart keeps the log and appends to it
        client.post("/predict", json={"rows": [[0, 0, 0]]})
    assert len(read_requests(store / "requests.db")) == 2


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"rows": [[1, 2]]}, 400, "row 0 has 2 values, the model takes 3"),
        ({"rows": [{"a": 1, "b": 2}]}, 400, "row 0 lacks the features c"),
        ({"rows": [["x", 1, 2]]}, 400, "row 0 holds a value that is not a number"),
        ({"rows": [[[1], 1, 2]]}, 422, "rows"),
        ({"rows": []}, 400, "'rows' is empty"),
        ({"images": ["aGVsbG8="]}, 400, "this model reads table rows"),
        ({}, 400, "send exactly one of"),
        ({"rows": [[1, 2, 3]], "extra": 1}, 422, "extra"),
    ],
)
def test_invalid_requests_are_refused_and_serving_goes_on(store: Path, body, status, message):
    register(store, "table", "mlp", seed=0)
    with client_for(store, "table") as client:
        answer = client.post("/predict", json=body)
        assert answer.status_code == status and message in answer.text
        assert client.post("/predict", json={"rows": [[1, 2, 3]]}).status_code == 200


def test_oversized_and_malformed_bodies(store: Path):
    register(store, "table", "mlp", seed=0)
    with client_for(store, "table", limits=RequestLimits(max_body_bytes=1000)) as client:
        assert client.post("/predict", json={"rows": [[1.0, 2.0, 3.0]] * 200}).status_code == 413
        assert client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        assert "too_large" in client.get("/metrics").text


def test_image_model_takes_base64_and_uploads(store: Path):
    register(store, "pictures", "cnn", seed=0)
    with client_for(store, "pictures") as client:
        encoded = [base64.b64encode(png(seed)).decode() for seed in range(3)]
        assert len(client.post("/predict", json={"images": encoded}).json()["predictions"]) == 3
        files = [("files", (f"{seed}.png", png(seed), "image/png")) for seed in range(2)]
        assert len(client.post("/predict/images", files=files).json()["predictions"]) == 2
        broken = client.post("/predict", json={"images": [base64.b64encode(b"not an image").decode()]})
        assert broken.status_code == 400 and "cannot be decoded" in broken.text
        assert client.post("/predict", json={"images": ["%%%"]}).status_code == 400
        assert client.post("/predict", json={"rows": [[1, 2, 3]]}).status_code == 400


def test_champion_switch_under_load_fails_no_request(store: Path):
    register(store, "table", "mlp", seed=0)
    register(store, "table", "mlp", seed=1, set_alias=False)
    versions: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    with client_for(store, "table") as client:

        def hammer():
            while not stop.is_set():
                answer = client.post("/predict", json={"rows": [[0.5, -0.5, 1.0]]})
                statuses.append(answer.status_code)
                versions.append(answer.json().get("version"))

        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(hammer)
            threading.Event().wait(0.5)
            MlflowClient().set_registered_model_alias("table", "champion", "2")
            for _ in range(100):
                if client.get("/health").json()["version"] == "2":
                    break
                threading.Event().wait(0.1)
            threading.Event().wait(0.5)
            stop.set()
    assert statuses and set(statuses) == {200}
    assert versions[0] == "1" and versions[-1] == "2"


def test_promotion_is_gated_and_can_be_rolled_back(store: Path):
    from components.deployment.promotion import promote_if_better, rollback
    from components.errors import UserInputError
    from components.serving.model_store import alias_version, load_version

    register(store, "gate", "mlp", seed=0)
    register(store, "gate", "mlp", seed=1)
    assert alias_version("gate", "challenger") == "2"
    inputs = np.random.default_rng(5).normal(size=(200, 3)).astype(np.float32)
    champion_labels = load_version("gate", "1").predict(inputs).argmax(1)
    kept = promote_if_better("gate", inputs, champion_labels, "classification", "accuracy")
    assert not kept.promoted and kept.champion_score == 1.0 and alias_version("gate", "champion") == "1"
    challenger_labels = load_version("gate", "2").predict(inputs).argmax(1)
    promoted = promote_if_better("gate", inputs, challenger_labels, "classification", "accuracy")
    assert promoted.promoted and alias_version("gate", "champion") == "2"
    assert "promoted" in MlflowClient().get_model_version("gate", "2").tags["promotion_decision"]
    assert rollback("gate") == ("2", "1") and alias_version("gate", "champion") == "1"
    with pytest.raises(UserInputError, match="already the champion"):
        promote_if_better("gate", inputs, challenger_labels, "classification", "accuracy", challenger="1")


def test_feedback_labels_join_logged_requests(store: Path):
    from components.monitoring.production import labelled_accuracy
    from components.serving.request_log import add_feedback

    register(store, "table", "mlp", seed=0)
    with client_for(store, "table") as client:
        answers = [client.post("/predict", json={"rows": [[0.1 * i, 0.2, 0.3], [1, 2, 3]]}).json() for i in range(3)]
    stored, unknown = add_feedback(
        store / "requests.db",
        [
            (answers[0]["request_id"], 0, answers[0]["predictions"][0]["label"]),
            (answers[1]["request_id"], 1, "nonsense"),
            ("ghost", 0, "yes"),
        ],
    )
    assert stored == 2 and unknown == ["ghost"]
    records = read_requests(store / "requests.db")
    assert [record["request_id"] for record in records] == [answer["request_id"] for answer in answers]
    assert labelled_accuracy(records, "classification") == {"labelled_inputs": 2.0, "accuracy": 0.5}


def test_request_log_written_before_request_ids_is_upgraded(tmp_path: Path):
    import sqlite3

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:
        connection.execute(
            "CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, model_name TEXT NOT NULL,"
            " model_version TEXT NOT NULL, rows INTEGER NOT NULL, latency_ms REAL NOT NULL, inputs BLOB NOT NULL,"
            " outputs BLOB NOT NULL, predictions TEXT NOT NULL)"
        )
    assert read_requests(old) == []
    log = RequestLog(old)
    log.record("m", "1", np.zeros((1, 2)), np.ones((1, 2)), [{"label": "a"}], 1.0, "abc")
    log.close()
    assert [record["request_id"] for record in read_requests(old)] == ["abc"]
