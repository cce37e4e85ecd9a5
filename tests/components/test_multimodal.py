"""A table with a free-text column next to numeric and categorical ones: detected as multimodal,
one encoder per modality and a fusion head, the same preprocessing in training, ONNX and serving."""

from pathlib import Path

import numpy as np
import torch

from components.data.preparation import Preprocessor
from components.data.sources import detect_modality, load_dataset, load_unlabelled_inputs
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.models.families import build_network
from components.serving.inputs import rows_to_array
from components.serving.model_store import ServingMetadata
from tests.components.test_text import BAD, FILLER, GOOD


def write_tickets(path: Path, count: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["ticket_id,price,channel,comment,outcome"]
    for index in range(count):
        happy = index % 2 == 0
        words = list(rng.choice(FILLER, size=8)) + list(rng.choice(GOOD if happy else BAD, size=2))
        channel = rng.choice(["web", "phone", "shop"])
        lines.append(f't{index},{rng.normal(50, 10):.2f},{channel},"{" ".join(words)}",{"kept" if happy else "churned"}')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_multimodal_tables_from_loading_to_onnx_and_serving(tmp_path: Path):
    path = write_tickets(tmp_path / "tickets.csv")
    assert detect_modality(path, "outcome") == "multimodal"
    dataset = load_dataset(path, "multimodal", "outcome")
    assert dataset.feature_names == ["price", "channel", "comment"]
    length = dataset.text_length
    assert dataset.features.shape == (80, 2 + length)

    categories = {dataset.feature_names.index(c): len(v) for c, v in dataset.categories.items()}
    preprocessor = Preprocessor.fit(dataset.features[:60], "multimodal", None, categories, length)
    assert preprocessor.categorical == [1] and len(preprocessor.cardinalities) == 2
    encoded = preprocessor.transform(dataset.features)
    assert abs(encoded[:60, 0].mean()) < 1e-5  # the price is standardised, the codes are not
    torch.manual_seed(0)
    architecture = {
        "depth": 1,
        "width": 16,
        "activation": "relu",
        "encoder": "gru",
        "embedding_size": 16,
        "text_width": 16,
        "fusion_width": 16,
        "dropout": 0.0,
    }
    network = build_network("fusion", [2 + length], 2, architecture, preprocessor).eval()
    model = DeployableModel(network, preprocessor, "classification").eval()
    with torch.no_grad():
        assert np.allclose(model.preprocess(torch.from_numpy(dataset.features)).numpy(), encoded, atol=1e-5)
    session = inference_session(export_onnx(model, dataset.features, tmp_path / "fusion.onnx"), 1)
    assert check_parity(model, session, dataset.features, 1e-4).class_agreement == 1.0

    metadata = ServingMetadata(
        "multimodal",
        "classification",
        ["churned", "kept"],
        dataset.feature_names,
        [2 + length],
        dataset.categories,
        text_length=length,
    )
    served = rows_to_array([{"price": 51.0, "channel": "web", "comment": "the film was great"}], metadata)
    new = tmp_path / "new.csv"
    new.write_text('price,channel,comment\n51.0,web,"the film was great"\n')
    assert np.array_equal(served, load_unlabelled_inputs(new, "multimodal", dataset.feature_names, (length,), dataset.categories))
