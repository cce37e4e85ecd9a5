"""Finding what is wrong with labelled data: duplicates, conflicting duplicates, outliers and likely
label errors. Each finder returns sample positions; the data preparation stage applies the policy
of params.yaml (flag only, or drop) and lists the flagged sample ids in the quality report.

- Duplicates and conflicts compare the raw inputs byte for byte (images after conversion to the
  common size, table rows with missing values as equal).
- Outliers: scikit-learn's IsolationForest fitted on the training split (missing numbers take the
  training median; each part of a row reduced by :class:`InputReducer` first, to 10 components).
- Label errors (components/data/label_errors.py): out-of-fold predicted probabilities of a cheap model
  on what :class:`InputReducer` makes of each row (table columns standardised, category codes one-hot,
  images and sequences projected on 50 principal components, texts as TF-IDF word counts projected on
  50 latent components) handed to cleanlab's ``find_label_issues``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

PCA_COMPONENTS = 50
# The outlier detector sees fewer: out of sample, the minor components of a PCA fitted on a few
# hundred rows spread wider than in it, and IsolationForest then isolates ordinary new inputs
# (50 components: 18% of new digits flagged at 5% contamination after 150 training images; 10: 4%).
OUTLIER_COMPONENTS = 10
PREDICT_CHUNK = 10_000  # rows predicted at a time (a SIGTERM is handled between chunks)
OUTLIER_FIT_ROWS = 100_000  # training rows that fit the outlier detector, at most


@dataclass
class DuplicateGroups:
    duplicates: list[int] = field(default_factory=list)  # later copies of an input with the same label
    conflicts: list[int] = field(default_factory=list)  # every copy of an input seen with different labels
    groups: int = 0  # inputs that appear more than once


def input_keys(features: np.ndarray) -> np.ndarray:
    """Each sample's raw input as one opaque value of its bytes (NaN compares equal to NaN), so that
    NumPy's sort-based set operations find equal inputs exactly, without a Python loop over the rows."""
    rows = np.ascontiguousarray(features.reshape(len(features), int(np.prod(features.shape[1:], dtype=int))))
    if rows.dtype.kind == "O":
        rows = rows.astype(np.float64)
    if rows.dtype.kind == "f":
        rows = np.where(np.isnan(rows), rows.dtype.type(-3.0e38), rows)
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * max(rows.shape[1], 1)))).ravel()


def find_duplicates(features: np.ndarray, targets: np.ndarray) -> DuplicateGroups:
    """Exact duplicates (same input, same label: all copies but the first) and conflicting duplicates
    (same input, different labels: all copies)."""
    found = DuplicateGroups()
    if len(features) == 0:
        return found
    _, inverse, counts = np.unique(input_keys(features), return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts[inverse.ravel()] > 1)  # positions of inputs seen more than once, in order
    by_input: dict[int, list[int]] = {}
    for position in repeated.tolist():
        by_input.setdefault(int(inverse.ravel()[position]), []).append(position)
    for positions in by_input.values():
        found.groups += 1
        labels = {str(targets[position]) for position in positions}
        if len(labels) > 1:
            found.conflicts.extend(positions)
        else:
            found.duplicates.extend(positions[1:])
    found.duplicates.sort()
    found.conflicts.sort()
    return found


def table_matrix(features: np.ndarray, reference: np.ndarray, blocks: tuple[Block, ...] = ()) -> np.ndarray:
    """Flattened float inputs with missing values replaced by the reference's medians, except in
    category columns: there a missing value is a category of its own (the one-hot encoder's)."""
    flat = features.reshape(len(features), -1).astype(np.float64)
    medians = np.nanmedian(reference.reshape(len(reference), -1).astype(np.float64), axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    start = 0
    for block in blocks:
        medians[start + block.width - block.categorical : start + block.width] = np.nan
        start += block.width
    return np.where(np.isnan(flat), medians, flat)


@dataclass(frozen=True)
class Block:
    """A part of a flattened input row: ``columns`` (a table's columns, the last ``categorical`` of
    them category codes), ``signal`` (pixels or time steps) or ``tokens`` (a text's token codes)."""

    kind: str
    width: int
    categorical: int = 0


def input_blocks(
    modality: str,
    features: np.ndarray,
    text_length: int = 0,
    image_shape: tuple[int, ...] | list[int] = (),
    categorical: int = 0,
) -> tuple[Block, ...]:
    """The parts of a flattened input row (``categorical``: how many category-code columns end a
    table's columns)."""
    width = int(np.prod(features.shape[1:]))
    if modality == "multimodal":
        second = int(np.prod(image_shape)) if image_shape else text_length
        return (Block("columns", width - second, categorical), Block("signal" if image_shape else "tokens", second))
    if modality == "tabular":
        return (Block("columns", width, categorical),)
    return (Block({"image": "signal", "sequence": "signal", "text": "tokens"}.get(modality, "columns"), width),)


def describe_blocks(blocks: tuple[Block, ...]) -> str:
    names = {
        "columns": "standardised columns",
        "signal": "principal components of the pixels or steps",
        "tokens": "latent components of TF-IDF word counts",
    }
    described = " + ".join(names[block.kind] + (" (categories one-hot)" if block.categorical else "") for block in blocks)
    return described + (" (each part scaled by its first singular value)" if len(blocks) > 1 else "")


class TokenCounts(TransformerMixin, BaseEstimator):
    """Rows of token codes (0: padding or unknown) as sparse word counts over the codes seen in fitting."""

    def fit(self, codes, _=None):
        self.size_ = int(np.max(codes, initial=0)) + 1
        return self

    def transform(self, codes):
        from scipy.sparse import csr_matrix

        codes = np.asarray(codes).astype(np.int64)
        rows = np.repeat(np.arange(len(codes)), codes.shape[1])
        known = (codes.ravel() > 0) & (codes.ravel() < self.size_)
        words = codes.ravel()[known]
        return csr_matrix((np.ones(len(words)), (rows[known], words)), shape=(len(codes), self.size_))


class InputReducer(TransformerMixin, BaseEstimator):
    """What the cheap models of cleaning see: each block of a row reduced on its own (columns
    standardised, category codes one-hot first; pixels and time steps standardised and projected on at most ``components``
    principal components, whitened when they are the whole input; token codes as TF-IDF word counts
    projected on at most ``components`` latent components). A row of several blocks (a table's
    columns next to an image or a text) has each block divided by its first singular value, as in
    multiple factor analysis, so that 64 pixels do not drown 2 table columns, nor the reverse."""

    def __init__(
        self, blocks: tuple[Block, ...] = (), seed: int = 0, rows: int | None = None, components: int = PCA_COMPONENTS
    ) -> None:
        self.blocks = blocks
        self.seed = seed
        self.rows = rows
        self.components = components

    def _parts(self, matrix: np.ndarray):
        start = 0
        for block in self.blocks or (Block("columns", matrix.shape[1]),):
            yield block, matrix[:, start : start + block.width]
            start += block.width

    def _reducer(self, block: Block, rows: int, alone: bool):
        from sklearn.decomposition import PCA
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if block.kind == "tokens":
            return make_pipeline(TokenCounts(), TfidfTransformer(), _LatentComponents(self.components, self.seed))
        if block.kind == "signal" and block.width > self.components:
            components = min(self.components, block.width, max(1, rows - 1))
            return make_pipeline(StandardScaler(), PCA(components, whiten=alone, random_state=self.seed))
        if block.categorical:
            from sklearn.compose import ColumnTransformer
            from sklearn.preprocessing import OneHotEncoder

            numeric = block.width - block.categorical
            one_hot = make_pipeline(OneHotEncoder(handle_unknown="ignore", sparse_output=False), StandardScaler())
            return ColumnTransformer(
                [("numeric", StandardScaler(), slice(0, numeric)), ("categories", one_hot, slice(numeric, block.width))]
            )
        return StandardScaler()

    def fit(self, matrix, _=None):
        self._fit_blocks(np.asarray(matrix))
        return self

    def fit_transform(self, matrix, _=None, **__):  # fitting already computes the output
        return self._fit_blocks(np.asarray(matrix))

    def _fit_blocks(self, matrix: np.ndarray) -> np.ndarray:
        parts = list(self._parts(matrix))
        rows = self.rows or len(matrix)
        self.reducers_ = [self._reducer(block, rows, len(parts) == 1) for block, part in parts]
        outputs = [reducer.fit_transform(part) for reducer, (_, part) in zip(self.reducers_, parts)]
        self.weights_ = [1.0] * len(outputs)
        if len(outputs) > 1:
            self.weights_ = [
                1.0 / max(float(np.linalg.svd(output, compute_uv=False)[0]) / np.sqrt(len(output)), 1e-12) for output in outputs
            ]
        return np.concatenate([weight * output for weight, output in zip(self.weights_, outputs)], axis=1)

    def transform(self, matrix):
        parts = self._parts(np.asarray(matrix))
        outputs = [reducer.transform(part) for reducer, (_, part) in zip(self.reducers_, parts)]
        return np.concatenate([weight * output for weight, output in zip(self.weights_, outputs)], axis=1)


class _LatentComponents(TransformerMixin, BaseEstimator):
    """TruncatedSVD to at most ``components`` (fewer when the vocabulary or the rows are fewer)."""

    def __init__(self, components: int = PCA_COMPONENTS, seed: int = 0) -> None:
        self.components = components
        self.seed = seed

    def fit(self, counts, _=None):
        from sklearn.decomposition import TruncatedSVD

        size = max(1, min(self.components, counts.shape[1] - 1, counts.shape[0] - 1))
        self.svd_ = TruncatedSVD(size, random_state=self.seed).fit(counts)
        return self

    def transform(self, counts):
        return self.svd_.transform(counts)


def find_outliers(
    train: np.ndarray, features: np.ndarray, contamination: float, seed: int, blocks: tuple[Block, ...] = ()
) -> np.ndarray:
    """Positions in ``features`` that an IsolationForest fitted on ``train`` calls outliers
    (``blocks``: the parts of a row, see :func:`input_blocks`; default: table columns, or an image)."""
    return outliers_by_split(train, {"new": features}, contamination, seed, blocks)["new"]


def outliers_by_split(
    train: np.ndarray, splits: dict[str, np.ndarray], contamination: float, seed: int, blocks: tuple[Block, ...] = ()
) -> dict[str, np.ndarray]:
    """:func:`find_outliers` of each split with one detector, fitted on at most ``OUTLIER_FIT_ROWS``
    training rows drawn at random (each tree reads 256 of them anyway; the expected share's threshold
    is a quantile of their scores), so that its cost does not grow with the training split. The trees
    score each chunk in threads on every core (scikit-learn scores in one thread unless told: 4.9 s
    against 2.4 s for 1,000,000 rows on 2 cores, the same outliers)."""
    from joblib import parallel_config
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline

    blocks = blocks or default_blocks(train)
    if len(train) > OUTLIER_FIT_ROWS:
        train = train[np.sort(np.random.default_rng(seed).choice(len(train), OUTLIER_FIT_ROWS, replace=False))]
    reducer = InputReducer(blocks, seed, components=OUTLIER_COMPONENTS)
    detector = make_pipeline(reducer, IsolationForest(contamination=contamination, random_state=seed))
    detector.fit(table_matrix(train, train, blocks))
    found = {}
    with parallel_config(backend="threading", n_jobs=-1):  # the trees score a chunk on every core
        for name, features in splits.items():
            flagged = [
                start
                + np.flatnonzero(
                    detector.predict(table_matrix(features[start : start + PREDICT_CHUNK * 10], train, blocks)) == -1
                )
                for start in range(0, len(features), PREDICT_CHUNK * 10)
            ]
            found[name] = np.concatenate(flagged) if flagged else np.empty(0, dtype=int)
    return found


def default_blocks(features: np.ndarray) -> tuple[Block, ...]:
    return input_blocks("image" if features.ndim > 2 else "tabular", features)


def shared_inputs(features_by_split: dict[str, np.ndarray]) -> dict[str, int]:
    """How many distinct inputs each pair of splits has in common (the leakage check); pairs with
    none are left out."""
    keys = {split: np.unique(input_keys(features)) for split, features in features_by_split.items()}
    names = list(keys)
    shared = {}
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            common = len(np.intersect1d(keys[first], keys[second], assume_unique=True))
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
