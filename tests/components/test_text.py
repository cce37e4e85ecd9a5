"""Free text: detected in a table, tokenised with a vocabulary whose training-split part is all the
network learns, every searched encoder exported to ONNX with that preprocessing, and served."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.preparation import Preprocessor
from components.data.sources import detect_modality, load_dataset, load_unlabelled_inputs
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.models import text_space
from components.models.families import build_network
from components.search.oneshot import OneShotRequest, run_oneshot
from components.serving.inputs import texts_to_array
from components.serving.model_store import ServingMetadata

GOOD = ["great", "lovely", "excellent", "superb", "wonderful"]
BAD = ["awful", "terrible", "dreadful", "poor", "horrible"]
FILLER = ["the", "film", "was", "really", "quite", "plot", "acting", "music", "ending", "story"]


def write_reviews(path: Path, count: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["review_id,review,sentiment"]
    for index in range(count):
        positive = index % 2 == 0
        words = list(rng.choice(FILLER, size=rng.integers(6, 14))) + list(rng.choice(GOOD if positive else BAD, size=2))
        rng.shuffle(words)
        lines.append(f'r{index},"{" ".join(words).capitalize()}.",{"positive" if positive else "negative"}')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_text_tables_are_detected_and_tokenised(tmp_path: Path):
    path = write_reviews(tmp_path / "reviews.csv")
    assert detect_modality(path, "sentiment") == "text"
    dataset = load_dataset(path, "text", "sentiment")
    assert dataset.feature_names == ["review"] and dataset.sample_ids[:2] == ["r0", "r1"]
    vocabulary = dataset.categories["review"]
    assert "great" in vocabulary and "the" in vocabulary
    length = dataset.features.shape[1]
    assert 10 <= length <= 16 and dataset.features.max() <= len(vocabulary)

    preprocessor = Preprocessor.fit(dataset.features[:40], "text", None, {0: len(vocabulary)})
    encoded = preprocessor.transform(dataset.features)
    assert encoded.max() <= preprocessor.cardinalities[0] - 1
    new = tmp_path / "new.csv"
    new.write_text('review\n"A great film, simply great"\n"Unheard-of wordery"\n')
    batch = load_unlabelled_inputs(new, "text", ["review"], (length,), dataset.categories)
    metadata = ServingMetadata("text", "classification", ["negative", "positive"], ["review"], [length], dataset.categories)
    served = texts_to_array(["A great film, simply great", "Unheard-of wordery"], metadata)
    assert np.array_equal(batch, served) and served[1].max() == 0  # words it does not know: unknown


@pytest.mark.parametrize("encoder", text_space.OPERATIONS)
def test_every_text_operation_exports_with_its_preprocessing(tmp_path: Path, encoder: str):
    dataset = load_dataset(write_reviews(tmp_path / "reviews.csv"), "text", "sentiment")
    preprocessor = Preprocessor.fit(dataset.features, "text", None, {0: len(dataset.categories["review"])})
    torch.manual_seed(0)
    architecture = {
        "depth": 2,
        "block1_op": encoder,
        "block1_skip": "residual",
        "block2_op": encoder,
        "block2_skip": "none",
        "width": 16,
        "dropout": 0.0,
    }
    network = build_network("text", list(dataset.features.shape[1:]), 2, architecture, preprocessor).eval()
    model = DeployableModel(network, preprocessor, "classification").eval()
    with torch.no_grad():
        assert np.allclose(model.preprocess(torch.from_numpy(dataset.features)).numpy(), preprocessor.transform(dataset.features))
    session = inference_session(export_onnx(model, dataset.features, tmp_path / f"{encoder}.onnx"), 1)
    assert check_parity(model, session, dataset.features, 1e-4).class_agreement == 1.0


def test_a_text_of_unknown_words_gets_finite_outputs():
    architecture = {"depth": 1, "block1_op": "attention", "block1_skip": "residual", "width": 16, "dropout": 0.0}
    network = build_network("text", [6], 2, architecture, None).eval()
    codes = torch.tensor([[0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]])  # all unknown; two known words
    assert torch.isfinite(network(codes)).all()


def test_darts_searches_the_text_space(tmp_path: Path):
    dataset = load_dataset(write_reviews(tmp_path / "reviews.csv"), "text", "sentiment")
    preprocessor = Preprocessor.fit(dataset.features, "text", None, {0: len(dataset.categories["review"])})
    codes = preprocessor.transform(dataset.features)
    labels = np.unique(dataset.target, return_inverse=True)[1].astype(np.int64)
    half = len(labels) // 2
    result = run_oneshot(
        OneShotRequest(
            "darts",
            text_space,
            "classification",
            list(codes.shape[1:]),
            2,
            (codes[:half], labels[:half]),
            (codes[half:], labels[half:]),
            tmp_path,
            time.time() + 120,
            max_epochs=2,
            batch_size=8,
            progress=lambda line: None,
            space_options={"cardinalities": preprocessor.cardinalities},
        )
    )
    assert set(result.architecture) == set(text_space.json_search_space()) and result.epochs == 2
    weights = result.probabilities["block1_op"]
    # DARTS's softmax over the block's operations (averaged over the last epoch, as logged)
    assert set(weights) == set(text_space.OPERATIONS) and sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    network = build_network("text", list(codes.shape[1:]), 2, {**result.architecture, "width": 16}, preprocessor)
    assert network(torch.from_numpy(codes[:3])).shape == (3, 2)
