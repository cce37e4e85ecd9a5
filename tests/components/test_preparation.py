from pathlib import Path

import numpy as np
import pytest

from components.data.preparation import Preprocessor, Splits, check_class_sizes, encode_target, split_dataset
from components.errors import DataError


def test_encode_target_uses_class_order():
    encoded = encode_target(np.asarray(["b", "a", "b"], dtype=object), "classification", ["a", "b"])
    assert encoded.tolist() == [1, 0, 1]


def test_split_is_stratified_disjoint_and_seeded():
    targets = np.repeat([0, 1, 2], [60, 30, 10])
    features = np.arange(len(targets), dtype=np.float32)[:, None]
    ids = [str(i) for i in range(len(targets))]
    splits = split_dataset(features, targets, ids, "classification", 0.2, 0.2, seed=3)
    assert sum(splits.sizes().values()) == 100
    sets = [set(splits.sample_ids[name]) for name in ("train", "validation", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    for name in ("train", "validation", "test"):
        share = np.bincount(splits.targets[name], minlength=3) / len(splits.targets[name])
        assert share == pytest.approx([0.6, 0.3, 0.1], abs=0.06)
    again = split_dataset(features, targets, ids, "classification", 0.2, 0.2, seed=3)
    assert np.array_equal(again.sample_ids["test"], splits.sample_ids["test"])
    other = split_dataset(features, targets, ids, "classification", 0.2, 0.2, seed=4)
    assert not np.array_equal(other.sample_ids["test"], splits.sample_ids["test"])


def test_tiny_classes_are_rejected():
    with pytest.raises(DataError, match="'b' \\(2\\)"):
        check_class_sizes(np.array([0, 0, 0, 1, 1]), ["a", "b"])


def test_fractions_must_leave_training_data():
    with pytest.raises(DataError, match="at least 10%"):
        split_dataset(np.zeros((10, 1)), np.zeros(10), [str(i) for i in range(10)], "regression", 0.5, 0.45, 0)


def test_tabular_preprocessor_imputes_and_standardises(tmp_path: Path):
    rng = np.random.default_rng(0)
    features = rng.normal(5, 3, size=(200, 3)).astype(np.float32)
    features[::10, 1] = np.nan
    preprocessor = Preprocessor.fit(features, "tabular")
    transformed = preprocessor.transform(features)
    assert not np.isnan(transformed).any()
    assert transformed.mean(axis=0) == pytest.approx([0, 0, 0], abs=1e-5)
    assert transformed.std(axis=0) == pytest.approx([1, 1, 1], abs=1e-4)
    preprocessor.save(tmp_path / "p.json")
    assert np.array_equal(Preprocessor.load(tmp_path / "p.json").transform(features), transformed)
    with pytest.raises(DataError, match="expects \\[3\\]"):
        preprocessor.transform(features[:, :2])


def test_image_preprocessor_standardises_per_channel():
    images = np.random.default_rng(0).integers(0, 255, size=(50, 3, 4, 4)).astype(np.uint8)
    transformed = Preprocessor.fit(images, "image").transform(images)
    assert transformed.mean(axis=(0, 2, 3)) == pytest.approx([0, 0, 0], abs=1e-5)


def test_regression_target_round_trip():
    target = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    preprocessor = Preprocessor.fit(np.zeros((3, 1), np.float32), "tabular", target)
    assert preprocessor.decode_target(preprocessor.encode_target(target)) == pytest.approx(target)


def test_splits_round_trip(tmp_path: Path):
    splits = split_dataset(
        np.arange(40, dtype=np.float32)[:, None], np.arange(40) % 2, [f"s{i}" for i in range(40)], "classification", 0.25, 0.25, 0
    )
    splits.save(tmp_path / "s.npz")
    loaded = Splits.load(tmp_path / "s.npz")
    assert loaded.sizes() == splits.sizes()
    assert np.array_equal(loaded.features["train"], splits.features["train"])


def test_official_and_grouped_splits():
    rng = np.random.default_rng(0)
    count = 120
    features = rng.normal(size=(count, 2)).astype(np.float32)
    targets = np.repeat([0, 1], count // 2)
    ids = [str(index) for index in range(count)]
    official = np.array(["train"] * 90 + ["test"] * 30, dtype=object)
    splits = split_dataset(features, targets, ids, "classification", 0.25, 0.15, 0, official=official)
    assert set(splits.sample_ids["test"]) == {str(index) for index in range(90, 120)}  # kept as given
    assert splits.sizes()["validation"] > 0 and not set(splits.sample_ids["validation"]) & {str(i) for i in range(90, 120)}

    groups = np.array([f"patient{index // 4}" for index in range(count)])  # 30 patients, 4 samples each
    splits = split_dataset(features, targets, ids, "classification", 0.25, 0.15, 0, groups=groups)
    group_of = dict(zip(ids, groups))
    members = {split: {group_of[i] for i in splits.sample_ids[split]} for split in ("train", "validation", "test")}
    assert not members["train"] & members["test"] and not members["train"] & members["validation"]
    assert not members["validation"] & members["test"]
    assert 0.15 < splits.sizes()["test"] / count < 0.35
    regression = split_dataset(features, features[:, 0], ids, "regression", 0.25, 0.15, 0, groups=groups)
    members = {split: {group_of[i] for i in regression.sample_ids[split]} for split in ("train", "test")}
    assert not members["train"] & members["test"]
