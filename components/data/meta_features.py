"""Meta-features of a dataset: cheap, modality-aware figures that describe it (size, shape, classes,
balance, missing values) and a landmarker (the cross-validated score of a quick linear model on a
small sample), so that datasets can be compared with each other (automation level L4: the search
of a new dataset can start where similar datasets ended). Logged by task formulation as ``meta_*``.
"""

from __future__ import annotations

import numpy as np

from components.data.cleaning import Block, InputReducer, input_blocks, table_matrix
from components.data.dataset import RawDataset

LANDMARK_ROWS = 1000  # the landmarker's sample: its cost does not grow with the dataset
LANDMARK_FOLDS = 3


def dataset_blocks(dataset: RawDataset) -> tuple[Block, ...]:
    """The parts of the dataset's flattened rows (table columns with their category codes last, pixels
    or steps, token codes), as cleaning and the landmarker read them."""
    text_column = dataset.feature_names[-1] if dataset.text_length else None
    table_categories = sum(column != text_column for column in dataset.categories)
    return input_blocks(dataset.modality, dataset.features, dataset.text_length, dataset.image_shape, table_categories)


def meta_features(dataset: RawDataset, targets: np.ndarray, task_type: str, seed: int = 0) -> dict[str, float]:
    """The dataset's meta-features (``targets``: class indices, or numbers for a regression)."""
    rows = len(dataset)
    figures = {"samples": float(rows), "log10_samples": float(np.log10(max(rows, 1)))}
    figures.update(_shape_figures(dataset))
    figures.update(_target_figures(targets, task_type))
    landmark = linear_landmark(dataset, targets, task_type, seed)
    if landmark is not None:
        figures["linear_landmark"] = landmark
    return figures


def _shape_figures(dataset: RawDataset) -> dict[str, float]:
    features = dataset.features
    figures: dict[str, float] = {}
    if dataset.modality == "image":
        channels, height, width = features.shape[1:]
        figures.update(channels=channels, height=height, width=width)
    elif dataset.modality == "sequence":
        figures.update(sequence_length=features.shape[1], channels=features.shape[2] if features.ndim > 2 else 1)
    elif dataset.modality == "text":
        figures["text_tokens"] = float(np.mean(np.count_nonzero(features, axis=1)))
    else:
        columns = len(dataset.feature_names) - (1 if dataset.text_length else 0) - (1 if dataset.image_shape else 0)
        figures.update(columns=columns, categorical_columns=len(dataset.categories) - (1 if dataset.text_length else 0))
        if dataset.text_length:
            figures["text_tokens"] = float(np.mean(np.count_nonzero(features[:, -dataset.text_length :], axis=1)))
        if dataset.image_shape:
            figures.update(channels=dataset.image_shape[0], height=dataset.image_shape[1], width=dataset.image_shape[2])
    if features.dtype.kind == "f":
        figures["missing_share"] = float(np.isnan(features).mean())
    return {key: float(value) for key, value in figures.items()}


def _target_figures(targets: np.ndarray, task_type: str) -> dict[str, float]:
    if task_type != "classification":
        values = targets.astype(np.float64)
        spread = values.std() or 1.0
        return {"target_skew": float(np.mean(((values - values.mean()) / spread) ** 3))}
    counts = np.bincount(targets)
    shares = counts[counts > 0] / counts.sum()
    entropy = float(-(shares * np.log(shares)).sum() / np.log(len(shares))) if len(shares) > 1 else 0.0
    return {
        "classes": float(len(shares)),
        "minority_to_majority": float(shares.min() / shares.max()),
        "class_entropy": entropy,  # 1: balanced
    }


def linear_landmark(dataset: RawDataset, targets: np.ndarray, task_type: str, seed: int = 0) -> float | None:
    """The 3-fold cross-validated score (accuracy, or R²) of a linear model on at most 1,000 rows,
    each part of a row reduced as cleaning reduces it; None when a class is too small to fold."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline

    positions = np.arange(len(dataset))
    classification = task_type == "classification"
    if len(positions) > LANDMARK_ROWS:
        stratify = targets if classification and np.bincount(targets).min() >= 2 else None
        positions, _ = train_test_split(positions, train_size=LANDMARK_ROWS, random_state=seed, stratify=stratify)
    features, labels = dataset.features[positions], targets[positions]
    if classification and (len(np.unique(labels)) < 2 or np.bincount(labels)[np.bincount(labels) > 0].min() < LANDMARK_FOLDS):
        return None
    blocks = dataset_blocks(dataset)
    rows = len(positions) * (LANDMARK_FOLDS - 1) // LANDMARK_FOLDS
    head = LogisticRegression(max_iter=300) if classification else Ridge()
    model = make_pipeline(InputReducer(blocks, seed, rows), head)
    folds = (StratifiedKFold if classification else KFold)(LANDMARK_FOLDS, shuffle=True, random_state=seed)
    matrix = table_matrix(features, features, blocks)
    return float(np.mean(cross_val_score(model, matrix, labels, cv=folds, scoring="accuracy" if classification else "r2")))
