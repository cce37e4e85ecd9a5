"""Cleaning rules on planted problems: label flips on the digits, duplicates and conflicting
duplicates, outliers, and inputs shared between splits; and the quality report built from them."""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from components.data.cleaning import find_duplicates, find_label_errors, find_outliers, shared_inputs
from components.data.quality import examples, headline_metrics, render_html


def test_most_planted_label_flips_on_the_digits_are_flagged_and_few_clean_samples():
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(images), size=int(0.05 * len(images)), replace=False)
    labels = digits.target.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    flagged = np.zeros(len(labels), dtype=bool)
    flagged[find_label_errors(images, labels, seed=0)] = True
    planted = np.zeros(len(labels), dtype=bool)
    planted[flipped] = True
    assert flagged[planted].mean() >= 0.8
    assert flagged[~planted].mean() < 0.05


def test_duplicates_and_conflicting_duplicates():
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    rows[4, 1] = np.nan
    features = np.concatenate([rows, rows[[1, 4]], rows[[2]]])  # 1 and 4 copied with their label, 2 with another
    targets = np.array([0, 1] * 5 + [1, 0, 1])
    found = find_duplicates(features, targets)
    assert found.duplicates == [10, 11]  # the copies, not the first occurrences; NaN equals NaN
    assert found.conflicts == [2, 12]
    assert found.groups == 3


def test_planted_outliers_are_found_by_a_detector_fitted_on_clean_training_rows():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 4)).astype(np.float32)
    new = np.concatenate([rng.normal(size=(60, 4)), rng.normal(size=(5, 4)) * 0.1 + 8.0]).astype(np.float32)
    new[0, 2] = np.nan  # missing values take the training median
    flagged = find_outliers(train, new, contamination=0.01, seed=0)
    assert set(range(60, 65)) <= set(flagged.tolist())
    assert len(flagged) <= 5 + 3


def test_leakage_check_counts_inputs_shared_between_splits():
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert shared_inputs({"train": a, "validation": a[:0], "test": a[2:] + 100}) == {}
    assert shared_inputs({"train": a, "validation": a[:0], "test": a[2:]}) == {"train/test": 2}


def test_quality_report_renders_examples_and_headline_figures(tmp_path: Path):
    images = np.zeros((3, 1, 4, 4), dtype=np.uint8)
    report = {
        "data_path": "data/images",
        "modality": "image",
        "task_type": "classification",
        "samples_loaded": 3,
        "samples_used": 3,
        "class_counts": {"a": 2, "b": 1},
        "imbalance_ratio": 2.0,
        "missing_shares": {},
        "constant_columns": [],
        "duplicates": {"count": 1, "policy": "drop", "method": "", "ids": ["a/1.png"]},
        "conflicts": {"count": 0, "policy": "drop", "method": "", "ids": []},
        "outliers": {"count": 0, "policy": "flag", "method": "", "ids": []},
        "label_errors": {"count": 1, "policy": "flag", "method": "cleanlab", "ids": ["b/<2>.png"]},
        "splits": {"train": 1, "validation": 1, "test": 1},
        "leakage": {"shared_inputs": {}},
        "decisions": ["1 duplicates: dropped"],
        "warnings": [],
    }
    shown = {"label_errors": examples(images, [2], ["a/0.png", "a/1.png", "b/<2>.png"], ["a", "a", "b"], "image", ["pixel_0"], 8)}
    page = render_html(report, shown)
    assert page.count("data:image/png;base64,") == 2  # the class chart and the one example
    assert "b/&lt;2&gt;.png" in page and "No input appears in two splits." in page
    figures = headline_metrics(report)
    assert figures["duplicates"] == 1.0 and figures["label_errors"] == 1.0 and figures["test_samples"] == 1.0
