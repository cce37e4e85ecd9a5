"""Finding what is wrong with labelled data: duplicates, conflicting duplicates, outliers and likely
label errors. Each finder returns sample positions; the data preparation stage applies the policy
of params.yaml (flag only, or drop) and lists the flagged sample ids in the quality report.

- Duplicates and conflicts compare the raw inputs byte for byte (images after conversion to the
  common size, table rows with missing values as equal).
- Outliers: scikit-learn's IsolationForest fitted on the training split (missing values take the
  training median; images are reduced to at most 50 principal components first).
- Label errors: out-of-fold predicted probabilities of a cheap model (standardise, PCA for images,
  an RBF SVM whose decision values are calibrated with a sigmoid on 3 inner folds; 5 outer folds)
  handed to cleanlab's ``find_label_issues``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

PCA_COMPONENTS = 50
WIDE_ROW = 1000  # values per row above which a table row is reduced like an image
FOLDS = 5


@dataclass
class DuplicateGroups:
    duplicates: list[int] = field(default_factory=list)  # later copies of an input with the same label
    conflicts: list[int] = field(default_factory=list)  # every copy of an input seen with different labels
    groups: int = 0  # inputs that appear more than once


def input_digests(features: np.ndarray) -> list[str]:
    """A digest per sample of its raw input (NaN compares equal to NaN)."""
    digests = []
    for row in features:
        array = np.ascontiguousarray(row)
        if array.dtype.kind == "f":
            array = np.where(np.isnan(array), np.float32(-3.0e38), array).astype(array.dtype)
        digests.append(hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest())
    return digests


def find_duplicates(features: np.ndarray, targets: np.ndarray) -> DuplicateGroups:
    """Exact duplicates (same input, same label: all copies but the first) and conflicting duplicates
    (same input, different labels: all copies)."""
    by_input: dict[str, list[int]] = {}
    for position, digest in enumerate(input_digests(features)):
        by_input.setdefault(digest, []).append(position)
    found = DuplicateGroups()
    for positions in by_input.values():
        if len(positions) < 2:
            continue
        found.groups += 1
        labels = {str(targets[position]) for position in positions}
        if len(labels) > 1:
            found.conflicts.extend(positions)
        else:
            found.duplicates.extend(positions[1:])
    found.duplicates.sort()
    found.conflicts.sort()
    return found


def _table_matrix(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Flattened float inputs with missing values replaced by the reference's medians."""
    flat = features.reshape(len(features), -1).astype(np.float64)
    medians = np.nanmedian(reference.reshape(len(reference), -1).astype(np.float64), axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    return np.where(np.isnan(flat), medians, flat)


def _reducer(features: np.ndarray, seed: int, rows: int | None = None):
    """Standardisation, then (images, sequences, rows wider than 1,000 values such as a table's
    columns with an image's pixels) PCA to at most 50 components; ``rows``: the fewest rows it will
    be fitted on."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    width = int(np.prod(features.shape[1:]))
    components = min(PCA_COMPONENTS, width, max(1, (rows or len(features)) - 1))
    if width > PCA_COMPONENTS and (features.ndim > 2 or width > WIDE_ROW):
        return make_pipeline(StandardScaler(), PCA(components, whiten=True, random_state=seed))
    return StandardScaler()


def find_outliers(train: np.ndarray, features: np.ndarray, contamination: float, seed: int) -> np.ndarray:
    """Positions in ``features`` that an IsolationForest fitted on ``train`` calls outliers."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline

    detector = make_pipeline(_reducer(train, seed), IsolationForest(contamination=contamination, random_state=seed))
    detector.fit(_table_matrix(train, train))
    return np.flatnonzero(detector.predict(_table_matrix(features, train)) == -1)


def out_of_fold_probabilities(features: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """Each sample's class probabilities from a cheap model that did not see it (5-fold)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    folds = min(FOLDS, int(np.bincount(targets).min()))
    rows = len(features) * (folds - 1) // folds
    calibration_folds = max(2, min(3, int(np.bincount(targets).min() * (folds - 1) // folds)))
    svm = CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), method="sigmoid", cv=calibration_folds, ensemble=False)
    model = make_pipeline(_reducer(features, seed, rows), svm)
    matrix = _table_matrix(features, features)
    return cross_val_predict(
        model, matrix, targets, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba"
    )


def find_label_errors(features: np.ndarray, targets: np.ndarray, seed: int, method: str = "predicted_neq_given") -> np.ndarray:
    """Positions whose given class is likely wrong (cleanlab, confident-learning family of filters).

    ``predicted_neq_given`` flags a sample when the out-of-fold model prefers another class; the
    other cleanlab filters (``prune_by_noise_rate``, ``both``, ...) flag fewer samples, each more surely.
    Classes with fewer than two samples cannot be cross-validated: nothing is flagged then.
    """
    from cleanlab.filter import find_label_issues

    counts = np.bincount(targets)
    if len(counts) < 2 or counts[counts > 0].min() < 2 or (counts == 0).any():
        return np.empty(0, dtype=int)
    probabilities = out_of_fold_probabilities(features, targets, seed)
    issues = find_label_issues(targets, probabilities, filter_by=method)
    return np.flatnonzero(issues)


def shared_inputs(features_by_split: dict[str, np.ndarray]) -> dict[str, int]:
    """How many distinct inputs each pair of splits has in common (the leakage check); pairs with
    none are left out."""
    digests = {split: set(input_digests(features)) for split, features in features_by_split.items()}
    names = list(digests)
    shared = {}
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            common = len(digests[first] & digests[second])
            if common:
                shared[f"{first}/{second}"] = common
    return shared


def shared_groups(groups_by_split: dict[str, list]) -> int:
    """How many groups appear in more than one split (0 for a correct grouped split)."""
    seen: dict = {}
    for split, groups in groups_by_split.items():
        for group in set(groups):
            seen.setdefault(group, set()).add(split)
    return sum(len(splits) > 1 for splits in seen.values())
