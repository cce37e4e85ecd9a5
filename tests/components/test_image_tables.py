"""A folder with a table that lists images next to numeric and categorical columns: detected as
multimodal, a CNN for the image and an MLP for the columns joined by a fusion head, with the same
preprocessing in training, in the ONNX graph, behind the endpoint and in monitoring."""

import base64
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from components.data.cleaning import Block, find_outliers, input_blocks
from components.data.preparation import Preprocessor
from components.data.quality import examples
from components.data.sources import detect_modality, load_dataset, load_unlabelled_inputs
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.errors import ConfigurationError, DataError
from components.models.families import FAMILIES, build_network, choose_families, split_parameters
from components.serving.inputs import RequestError, rows_to_array
from components.serving.model_store import ServingMetadata
from components.training.augmentation import augment, choose_augmentation

ARCHITECTURE = {
    "depth": 1,
    "width": 16,
    "activation": "relu",
    "convolutions": 1,
    "channels": 8,
    "block": "plain",
    "kernel_size": 3,
    "fusion_width": 16,
    "dropout": 0.0,
}


def scan(pattern: int, rng: np.random.Generator, size: int = 8) -> np.ndarray:
    """A noisy grey image, bright in its top-left (pattern 1) or bottom-right (pattern -1) quarter."""
    pixels = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
    half = size // 2
    corner = slice(0, half) if pattern > 0 else slice(half, size)
    pixels[corner, corner] += 150
    return pixels


def write_scans(folder: Path, count: int = 120, seed: int = 0, labelled: bool = True) -> Path:
    """Scans with a dose and a site. The label needs both the image and the dose: a large dose
    decides on its own, a small one defers to the image, so either part alone is right 3 times in 4."""
    rng = np.random.default_rng(seed)
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    lines = ["scan,dose,site" + (",outcome" if labelled else "")]
    for index in range(count):
        pattern = int(rng.choice([-1, 1]))
        dose = float(rng.choice([-2.0, -0.5, 0.5, 2.0]) + rng.normal(0, 0.1))
        site = rng.choice(["north", "south", "east"])
        Image.fromarray(scan(pattern, rng), mode="L").save(folder / "scans" / f"{index:03d}.png")
        outcome = "ill" if pattern + dose > 0 else "well"
        lines.append(f"scans/{index:03d}.png,{dose:.3f},{site}" + (f",{outcome}" if labelled else ""))
    (folder / "scans.csv").write_text("\n".join(lines) + "\n")
    return folder


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_image_tables_from_loading_to_onnx_serving_and_monitoring(tmp_path: Path):
    folder = write_scans(tmp_path / "clinic")
    assert detect_modality(folder, "outcome") == "multimodal"
    dataset = load_dataset(folder, "multimodal", "outcome")
    assert dataset.feature_names == ["dose", "site", "scan"] and dataset.image_shape == (1, 8, 8)
    assert dataset.features.shape == (120, 2 + 64) and dataset.sample_ids[0] == "scans/000.png"
    assert dataset.categories == {"site": ["east", "north", "south"]}

    categories = {dataset.feature_names.index(c): len(v) for c, v in dataset.categories.items()}
    preprocessor = Preprocessor.fit(dataset.features[:90], "multimodal", None, categories, 0, dataset.image_shape)
    assert preprocessor.categorical == [1] and preprocessor.cardinalities == [4] and len(preprocessor.means) == 3
    encoded = preprocessor.transform(dataset.features)
    assert encoded.shape == (120, 66)
    assert abs(encoded[:90, 0].mean()) < 1e-5 and set(np.unique(encoded[:, 1])) <= {1.0, 2.0, 3.0}
    assert abs(encoded[:90, 2:].mean()) < 1e-5 and abs(encoded[:90, 2:].std() - 1) < 1e-3  # pixels per channel

    assert choose_families("multimodal", parts="image")[0][0].name == "image_fusion"
    torch.manual_seed(0)
    network = build_network("image_fusion", [66], 2, ARCHITECTURE, preprocessor).eval()
    model = DeployableModel(network, preprocessor, "classification").eval()
    with torch.no_grad():
        assert np.allclose(model.preprocess(torch.from_numpy(dataset.features)).numpy(), encoded, atol=1e-5)
    session = inference_session(export_onnx(model, dataset.features, tmp_path / "image_fusion.onnx"), 1)
    assert check_parity(model, session, dataset.features, 1e-4).class_agreement == 1.0

    metadata = ServingMetadata(
        "multimodal",
        "classification",
        ["ill", "well"],
        dataset.feature_names,
        [66],
        dataset.categories,
        image_shape=list(dataset.image_shape),
    )
    image = np.asarray(Image.open(folder / "scans" / "005.png"))
    row = {"dose": 0.5, "site": "north", "scan": png_base64(image)}
    served = rows_to_array([row, [0.5, "north", png_base64(image)]], metadata)
    assert served.shape == (2, 66) and np.array_equal(served[0], served[1])
    assert np.array_equal(served[0, 2:], image.reshape(-1).astype(np.float32))
    with pytest.raises(RequestError, match="lacks the image column 'scan'"):
        rows_to_array([{"dose": 0.5, "site": "north"}], metadata)
    with pytest.raises(RequestError, match="not valid base64"):
        rows_to_array([{"dose": 0.5, "site": "north", "scan": "%%%"}], metadata)

    new = write_scans(tmp_path / "production", count=5, seed=1, labelled=False)
    batch = load_unlabelled_inputs(new, "multimodal", dataset.feature_names, dataset.image_shape, dataset.categories)
    first = {"dose": float(batch[0, 0]), "site": dataset.categories["site"][int(batch[0, 1]) - 1]}
    first["scan"] = png_base64(np.asarray(Image.open(new / "scans" / "000.png")))
    assert batch.shape == (5, 66) and np.array_equal(rows_to_array([first], metadata)[0], batch[0])
    with pytest.raises(DataError, match="is not a folder, but this model takes a folder with a table of image paths"):
        load_unlabelled_inputs(new / "scans.csv", "multimodal", dataset.feature_names, dataset.image_shape, dataset.categories)
    (new / "scans.csv").write_text("scan,site\nscans/000.png,north\n")
    with pytest.raises(DataError, match="lacks the columns the model was trained on: dose"):
        load_unlabelled_inputs(new, "multimodal", dataset.feature_names, dataset.image_shape, dataset.categories)


def test_image_tables_are_cleaned_augmented_and_shown(tmp_path: Path):
    dataset = load_dataset(write_scans(tmp_path / "clinic", count=150), "multimodal", "outcome")
    blocks = input_blocks("multimodal", dataset.features, 0, dataset.image_shape)
    assert blocks == (Block("columns", 2), Block("signal", 64))
    flagged = find_outliers(dataset.features[:120], dataset.features[120:], 0.05, 0, blocks)
    assert len(flagged) <= 6  # 30 rows like the training rows: few flagged (planted flips: test_cleaning)

    policy = choose_augmentation("multimodal", "auto", 15.0, 0.1, False, image_shape=dataset.image_shape)
    assert policy.image_shape == [1, 8, 8] and "the table's columns are left as they are" in policy.describe()
    assert not choose_augmentation("multimodal", "auto", 15.0, 0.1, False).active  # table and text: none
    batch = torch.from_numpy(dataset.features[:16])
    torch.manual_seed(0)
    moved = augment(batch, policy)
    assert torch.equal(moved[:, :2], batch[:, :2]) and not torch.equal(moved[:, 2:], batch[:, 2:])

    names, categories = dataset.feature_names, dataset.categories
    shown = examples(dataset.features, [0, 1], dataset.sample_ids, ["ill", "well"], "multimodal", names, 2, categories, (1, 8, 8))
    assert shown[0]["html"].startswith('<figure><img src="data:image/png;base64,') and "dose" in shown[0]["html"]
    site = dataset.categories["site"][int(dataset.features[0, 1]) - 1]
    assert f"site {site})" in shown[0]["html"]  # the category itself, not its code


def test_every_image_fusion_architecture_runs_forward():
    family = FAMILIES["image_fusion"]
    preprocessor = Preprocessor.fit(
        np.concatenate([np.random.default_rng(0).normal(size=(8, 2)), np.ones((8, 1)), np.zeros((8, 3 * 13 * 9))], axis=1),
        "multimodal",
        None,
        {2: 3},
        0,
        (3, 13, 9),
    )
    inputs = torch.cat([torch.randn(2, 2), torch.ones(2, 1), torch.randn(2, 3 * 13 * 9)], dim=1)
    structure = ("depth", "convolutions", "block", "kernel_size")
    for combination in itertools.product(*(family.search_space[key]["_value"] for key in structure)):
        parameters = {key: spec["_value"][-1] for key, spec in family.search_space.items()} | dict(zip(structure, combination))
        architecture, _ = split_parameters(family, parameters)
        network = build_network("image_fusion", [3 + 3 * 13 * 9], 4, architecture, preprocessor).eval()
        assert network(inputs).shape == (2, 4) and network.embed(inputs).shape[0] == 2


def test_family_overrides_must_match_what_sits_next_to_the_table():
    assert choose_families("multimodal")[0][0].name == "fusion"
    with pytest.raises(ConfigurationError, match="'fusion' reads tables with text data, but the data is tables with image"):
        choose_families("multimodal", "fusion", parts="image")
    with pytest.raises(ConfigurationError, match="'image_fusion' reads tables with image data, but the data is tabular"):
        choose_families("tabular", "image_fusion")
