"""Meta-features describe the dataset they were computed on: its shape, its classes and how far a
linear model gets, and they move when the data does."""

from pathlib import Path

import numpy as np

from components.data.dataset import RawDataset
from components.data.meta_features import LANDMARK_ROWS, meta_features
from components.data.sources import load_dataset
from tests.conftest import write_images, write_table


def _table(rows: int, seed: int, missing: float = 0.0) -> tuple[RawDataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4)).astype(np.float32)
    targets = (features[:, 0] + features[:, 1] > 0).astype(int)
    features[rng.random(features.shape) < missing] = np.nan
    names = ["a", "b", "c", "d"]
    return RawDataset("tabular", features, targets.astype(str), names, [str(i) for i in range(rows)]), targets


def test_a_learnable_table_scores_higher_on_the_landmarker_than_the_same_table_with_shuffled_labels():
    dataset, targets = _table(600, seed=0)
    learnable = meta_features(dataset, targets, "classification")
    shuffled = meta_features(dataset, np.random.default_rng(1).permutation(targets), "classification")
    assert learnable["linear_landmark"] > 0.85 and shuffled["linear_landmark"] < 0.65
    assert learnable["columns"] == 4 and learnable["samples"] == 600 and learnable["missing_share"] == 0.0


def test_imbalance_missing_values_and_size_move_their_figures():
    dataset, targets = _table(3000, seed=2, missing=0.1)
    balanced = meta_features(dataset, targets, "classification")
    rare = targets.copy()
    rare[np.flatnonzero(rare == 1)[100:]] = 0  # 100 positives left
    imbalanced = meta_features(dataset, rare, "classification")
    assert imbalanced["minority_to_majority"] < 0.05 < 0.8 < balanced["minority_to_majority"]
    assert imbalanced["class_entropy"] < 0.3 < 0.95 < balanced["class_entropy"]
    assert abs(balanced["missing_share"] - 0.1) < 0.01
    assert balanced["log10_samples"] > np.log10(LANDMARK_ROWS)  # the landmarker used a sample, the count did not


def test_images_and_regression_targets_have_their_own_figures(tmp_path: Path):
    images = load_dataset(write_images(tmp_path / "images", per_class=12, size=10), "image", "label")
    targets = np.unique(images.target, return_inverse=True)[1]
    figures = meta_features(images, targets, "classification")
    assert (figures["channels"], figures["height"], figures["width"], figures["classes"]) == (1, 10, 10, 3)
    table = load_dataset(write_table(tmp_path / "table.csv", rows=200), "tabular", "label")
    column = table.features[:, 0].astype(np.float64)
    linear, cubic = meta_features(table, 2 * column, "regression"), meta_features(table, np.exp(3 * column), "regression")
    assert "classes" not in linear and abs(linear["target_skew"]) < 0.5 < 2.0 < cubic["target_skew"]
    assert linear["linear_landmark"] > 0.99 > 0.8 > cubic["linear_landmark"]  # R² of a linear model
