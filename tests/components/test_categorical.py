"""Categorical table columns: codes of the dataset's vocabulary, renumbered to the training split's
categories (anything else is the unknown category), embedded by the MLP; the same preprocessing in
training, in the exported ONNX graph and in the server's reading of JSON rows."""

from pathlib import Path

import numpy as np
import torch

from components.data.preparation import Preprocessor
from components.data.sources import load_unlabelled_inputs
from components.data.tables import load_table
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.models.families import build_network
from components.serving.inputs import rows_to_array
from components.serving.model_store import ServingMetadata

MLP = {"depth": 1, "width": 16, "activation": "relu", "dropout": 0.0}


def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    colours = rng.choice(["red", "green", "blue"], size=60)
    sizes = rng.choice(["S", "M", "L", None], size=60)
    lines = ["x,colour,size,label"] + [
        f"{value:.3f},{colour},{size or ''},{'yes' if colour == 'red' else 'no'}"
        for value, colour, size in zip(rng.normal(size=60), colours, sizes)
    ]
    lines.append("0.5,purple,S,no")  # a colour that only one row has
    path = tmp_path / "shop.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_categorical_columns_from_loading_to_onnx_and_serving(tmp_path: Path):
    dataset = load_table(table(tmp_path), "label")
    assert dataset.feature_names == ["x", "colour", "size"]
    assert dataset.categories == {"colour": ["blue", "green", "purple", "red"], "size": ["L", "M", "S"]}
    assert np.isnan(dataset.features[:, 2]).any()  # a missing size stays missing until preprocessing

    train = dataset.features[:-1]  # the training split never sees "purple"
    categories = {1: 4, 2: 3}
    preprocessor = Preprocessor.fit(train, "tabular", None, categories)
    assert preprocessor.categorical == [1, 2] and preprocessor.cardinalities == [4, 4]
    encoded = preprocessor.transform(dataset.features)
    assert encoded[-1, 1] == 0.0  # purple: unknown
    assert set(np.unique(encoded[:, 1])) == {1.0, 2.0, 3.0} | {0.0}
    assert np.all(np.isin(encoded[:, 2], [0.0, 1.0, 2.0, 3.0]))  # missing sizes: unknown, 0

    torch.manual_seed(0)
    network = build_network("mlp", [3], 2, MLP, preprocessor).eval()
    assert [embedding.num_embeddings for embedding in network.embeddings] == [4, 4]
    model = DeployableModel(network, preprocessor, "classification").eval()
    with torch.no_grad():
        in_graph = model.preprocess(torch.from_numpy(dataset.features)).numpy()
    assert np.allclose(in_graph, encoded, atol=1e-6)  # the graph's preprocessing is the training one

    onnx_path = export_onnx(model, dataset.features, tmp_path / "model.onnx")
    parity = check_parity(model, inference_session(onnx_path, 1), dataset.features, 1e-4)
    assert parity.class_agreement == 1.0

    metadata = ServingMetadata(
        modality="tabular",
        task_type="classification",
        class_names=["no", "yes"],
        feature_names=dataset.feature_names,
        input_shape=[3],
        categories=dataset.categories,
    )
    rows = rows_to_array([{"x": 0.2, "colour": "red", "size": None}, [0.2, "teal", "M"]], metadata)
    assert rows[0, 1] == 4.0 and np.isnan(rows[0, 2]) and rows[1, 1] == 0.0 and rows[1, 2] == 2.0

    new = tmp_path / "new.csv"
    new.write_text("x,colour,size\n0.1,green,L\n0.3,teal,\n")
    batch = load_unlabelled_inputs(new, "tabular", dataset.feature_names, (), dataset.categories)
    assert batch[0, 1] == 2.0 and batch[1, 1] == 0.0 and np.isnan(batch[1, 2])


def test_the_quality_report_shows_categories_as_text():
    from components.data.quality import examples

    rows = np.array([[1.5, 2.0], [np.nan, np.nan], [0.1, 0.0]], dtype=np.float32)
    shown = examples(
        rows, [0, 1, 2], ["a", "b", "c"], ["x", "y", "z"], "tabular", ["a", "region"], 3, {"region": ["east", "north"]}
    )
    assert [entry["values"]["region"] for entry in shown] == ["north", None, "(unknown)"]
    assert [entry["values"]["a"] for entry in shown] == [1.5, None, 0.1]
