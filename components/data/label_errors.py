"""Likely label errors: each sample's class probabilities from a cheap model that did not see it
(5 folds), on what :class:`~components.data.cleaning.InputReducer` makes of each row, handed to
cleanlab's ``find_label_issues``. The model is an RBF SVM whose out-of-fold decision values are turned
into probabilities by one logistic regression (:func:`calibrated`), or for large tables logistic
regression on an approximation of the same kernel (:func:`label_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.data.cleaning import PREDICT_CHUNK, Block, InputReducer, default_blocks, table_matrix
from components.data.samples import stratified_sample

FOLDS = 5
LABEL_MODEL_ROWS = 4000  # the label-error model's training rows per fold, at most
# Above this many rows a table's label-error model approximates the RBF SVM's kernel with a fixed
# number of components: the SVM predicts in time proportional to its support vectors (thousands) per
# row, 58 s of 1,000,000 rows. On 200,000 rows with 5% planted flips the approximation found 0.977 of
# them with 2.4% of clean rows flagged in 2.6 s, as with 300 components in 4.9 s (the SVM: 0.982 and
# 1.9% in 11.4 s); on a few hundred rows it flagged more clean rows than the SVM (12% against 5%),
# hence the SVM there.
LARGE_TABLE_ROWS = 20_000
KERNEL_COMPONENTS = 150
CALIBRATION_ROWS = 20_000  # the rows of out-of-fold decision values the calibration learns from, at most


def out_of_fold_probabilities(features: np.ndarray, targets: np.ndarray, seed: int, blocks: tuple[Block, ...] = ()) -> np.ndarray:
    """Each sample's class probabilities from a cheap model that did not see it (5 folds). Each fold's
    model (:func:`label_model`) learns from at most ``LABEL_MODEL_ROWS`` rows of the other folds (a
    stratified sample: an RBF SVM's cost grows with the square of its rows) and predicts its fold ``PREDICT_CHUNK`` rows at a
    time, so that the cost grows linearly with the data and a SIGTERM is handled within seconds (Python
    runs signal handlers only between calls into compiled code). The SVM's decision values become
    probabilities once all folds are in (:func:`calibrated`).

    What the models see of a row (:class:`InputReducer`: scaling, principal components, TF-IDF) is
    fitted once, on a stratified sample of ``LABEL_MODEL_ROWS`` rows of all folds: it learns no label,
    so a held-out row among its inputs tells the fold's model nothing about that row's label, and the
    projection is not fitted five times (1.8 s of 5,000 images)."""
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    folds = min(FOLDS, int(np.bincount(targets).min()))
    blocks = blocks or default_blocks(features)
    classifier = label_model(blocks, targets, seed)
    matrix = table_matrix(features, features, blocks)
    sample = stratified_sample(np.arange(len(targets)), targets, LABEL_MODEL_ROWS, seed)
    reducer = InputReducer(blocks, seed, len(sample)).fit(matrix[sample])
    model = make_pipeline(FrozenEstimator(reducer), classifier)
    classes = int(targets.max()) + 1
    probabilistic = hasattr(classifier, "predict_proba")
    scores = np.zeros((len(targets), classes if probabilistic or classes > 2 else 1))
    for train, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(matrix, targets):
        train = stratified_sample(train, targets, LABEL_MODEL_ROWS, seed)
        fitted = clone(model).fit(matrix[train], targets[train])
        for start in range(0, len(held_out), PREDICT_CHUNK):
            chunk = held_out[start : start + PREDICT_CHUNK]
            if probabilistic:
                scores[np.ix_(chunk, fitted.classes_)] = fitted.predict_proba(matrix[chunk])
            else:
                scores[chunk] = fitted.decision_function(matrix[chunk]).reshape(len(chunk), -1)
    return scores if probabilistic else calibrated(scores, targets, seed)


def label_model(blocks: tuple[Block, ...], targets: np.ndarray, seed: int):
    """The classifier of :func:`out_of_fold_probabilities`: an RBF SVM, or for a table of more than
    ``LARGE_TABLE_ROWS`` rows, logistic regression on a Nystroem approximation of the same kernel
    (``KERNEL_COMPONENTS`` components; classes weighted so that a rare class kept at
    ``MIN_CLASS_ROWS`` rows in the sample is learnt, not regularised away)."""
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    if len(targets) > LARGE_TABLE_ROWS and all(block.kind == "columns" for block in blocks):
        return make_pipeline(
            Nystroem(n_components=KERNEL_COMPONENTS, random_state=seed),
            LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000),
        )
    return SVC(kernel="rbf", random_state=seed)


def calibrated(decisions: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """Class probabilities from the SVM's out-of-fold decision values (one column for two classes,
    one per class otherwise): a logistic regression on them, Platt's sigmoid for two classes, fitted on
    at most ``CALIBRATION_ROWS`` rows. Every value it learns from is out-of-fold, so one SVM per fold is
    enough; scikit-learn's CalibratedClassifierCV fits four per fold (three inner folds and a refit):
    on 5,000 images label-error detection went from 12.2 s to 6.3 s, finding the same planted flips."""
    from sklearn.linear_model import LogisticRegression

    rows = stratified_sample(np.arange(len(targets)), targets, CALIBRATION_ROWS, seed)
    calibration = LogisticRegression(max_iter=1000).fit(decisions[rows], targets[rows])
    probabilities = np.zeros((len(targets), int(targets.max()) + 1))
    probabilities[:, calibration.classes_] = calibration.predict_proba(decisions)
    return probabilities


@dataclass
class LabelIssues:
    """Likely label errors, the likeliest first, each with the class the out-of-fold model suggests
    and the probability it gives that class."""

    positions: np.ndarray
    suggested: np.ndarray
    probability: np.ndarray


def label_issues(
    features: np.ndarray,
    targets: np.ndarray,
    seed: int,
    method: str = "predicted_neq_given",
    blocks: tuple[Block, ...] = (),
) -> LabelIssues:
    """Samples whose given class is likely wrong (cleanlab, confident-learning family of filters),
    ranked by the model's confidence in the given label, lowest first.

    ``predicted_neq_given`` flags a sample when the out-of-fold model prefers another class; the
    other cleanlab filters (``prune_by_noise_rate``, ``both``, ...) flag fewer samples, each more surely.
    Classes with fewer than two samples cannot be cross-validated: nothing is flagged then.

    ``predicted_neq_given`` judges each sample on its own, so cleanlab is handed only the samples whose
    predicted class is not the given one (the others cannot be flagged): the same findings, in 0.06 s
    instead of 2 s at 1,000,000 rows, which cleanlab spends mostly validating its inputs.
    """
    from cleanlab.filter import find_label_issues

    counts = np.bincount(targets)
    if len(counts) < 2 or counts[counts > 0].min() < 2 or (counts == 0).any():
        return LabelIssues(np.empty(0, dtype=int), np.empty(0, dtype=int), np.empty(0))
    probabilities = out_of_fold_probabilities(features, targets, seed, blocks)
    candidates = np.arange(len(targets))
    if method == "predicted_neq_given":
        disagree = np.flatnonzero(probabilities.argmax(axis=1) != targets)
        if not len(disagree):
            return LabelIssues(np.empty(0, dtype=int), np.empty(0, dtype=int), np.empty(0))
        if len(np.unique(targets[disagree])) > 1:  # cleanlab asks for two classes among the labels it is given
            candidates = disagree
    positions = candidates[
        np.asarray(
            find_label_issues(
                targets[candidates], probabilities[candidates], filter_by=method, return_indices_ranked_by="self_confidence"
            ),
            dtype=int,
        )
    ]
    suggested = probabilities[positions].argmax(axis=1)
    return LabelIssues(positions, suggested, probabilities[positions, suggested])


def find_label_errors(
    features: np.ndarray,
    targets: np.ndarray,
    seed: int,
    method: str = "predicted_neq_given",
    blocks: tuple[Block, ...] = (),
) -> np.ndarray:
    """The positions of :func:`label_issues`, in order."""
    return np.sort(label_issues(features, targets, seed, method, blocks).positions)
