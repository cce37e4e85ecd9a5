"""Labelled production data: served inputs whose true labels arrived later (``dlautoml feedback``).

They are kept apart from the user's dataset, in one compressed NumPy file that DVC versions, so the
original data stays as the user gave it and each retraining's data is the pair (dataset version,
feedback version). Every sample goes to one split by a hash of its id: the same sample always lands
in the same split, whichever retraining reads it, and the test share ("held back") is never trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.data.formulation import label_strings

DEFAULT_FEEDBACK = "data/feedback.npz"


@dataclass
class FeedbackSet:
    """Raw inputs (shaped like the training features), their labels as text, and their ids."""

    dataset: str
    inputs: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    @classmethod
    def empty(cls, dataset: str = "") -> FeedbackSet:
        return cls(dataset, np.empty((0,), dtype=np.float32), np.empty((0,), dtype=str), np.empty((0,), dtype=str))

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, path: Path) -> FeedbackSet:
        if not Path(path).is_file():
            return cls.empty()
        with np.load(path, allow_pickle=False) as arrays:
            return cls(str(arrays["dataset"]), arrays["inputs"], arrays["labels"], arrays["ids"])

    def save(self, path: Path) -> None:
        """Writes atomically: a crash leaves the previous file in place."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.stem}.writing.npz")
        np.savez_compressed(
            staging,
            dataset=np.asarray(self.dataset),
            inputs=self.inputs,
            labels=self.labels.astype(str),
            ids=self.ids.astype(str),
        )
        staging.replace(path)

    def extended(self, dataset: str, inputs: np.ndarray, labels: list[str], ids: list[str]) -> FeedbackSet:
        """This set plus the samples whose ids it does not hold yet (labels already held are kept)."""
        known = set(self.ids.tolist()) if self.dataset == dataset else set()
        keep = [index for index, sample_id in enumerate(ids) if sample_id not in known]
        if not keep:
            return self
        if self.dataset != dataset or not len(self):
            return FeedbackSet(dataset, inputs[keep], np.asarray(labels)[keep], np.asarray(ids)[keep])
        return FeedbackSet(
            dataset,
            np.concatenate([self.inputs, inputs[keep].astype(self.inputs.dtype)]),
            np.concatenate([self.labels, np.asarray(labels)[keep]]),
            np.concatenate([self.ids, np.asarray(ids)[keep]]),
        )


def split_of(sample_id: str, test_fraction: float, validation_fraction: float) -> str:
    """The split a production sample belongs to, fixed by its id (shares as in data_preparation)."""
    share = int(hashlib.sha256(sample_id.encode()).hexdigest()[:12], 16) / 16**12
    if share < test_fraction:
        return "test"
    if share < test_fraction + validation_fraction:
        return "validation"
    return "train"


def labelled_requests(records: list[dict], input_shape: list[int], dtype: np.dtype) -> tuple[np.ndarray, list[str], list[str]]:
    """The labelled rows of logged requests: inputs, labels and ids ``feedback/<request id>/<row>``.

    Rows whose inputs are not shaped like the training features (a model trained on other data
    served them) are left out.
    """
    inputs, labels, ids = [], [], []
    for record in records:
        if list(record["inputs"].shape[1:]) != list(input_shape):
            continue
        for row, label in sorted(record["labels"].items()):
            if 0 <= row < len(record["inputs"]):
                inputs.append(record["inputs"][row])
                labels.append(str(label))
                ids.append(f"feedback/{record['request_id']}/{row}")
    if not inputs:
        return np.empty((0, *input_shape), dtype=dtype), [], []
    return np.stack(inputs).astype(dtype), labels, ids


def feedback_splits(
    feedback: FeedbackSet, task_type: str, class_names: list[str] | None, test_fraction: float, validation_fraction: float
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], list[str]]:
    """Feedback samples per split as (inputs, encoded targets, ids), and the labels that were dropped.

    A class label the model does not know cannot be trained on without changing the task: it is
    dropped and reported.
    """
    labels = label_strings(feedback.labels) if task_type == "classification" else feedback.labels
    index = {name: position for position, name in enumerate(class_names or [])}
    kept, targets, dropped = [], [], []
    for position, label in enumerate(labels):
        if task_type == "classification":
            if label not in index:
                dropped.append(str(label))
                continue
            targets.append(index[label])
        else:
            try:
                targets.append(float(label))
            except ValueError:
                dropped.append(str(label))
                continue
        kept.append(position)
    target_array = np.asarray(targets, dtype=np.int64 if task_type == "classification" else np.float32)
    assigned = np.array([split_of(str(feedback.ids[i]), test_fraction, validation_fraction) for i in kept])
    parts = {}
    for split in ("train", "validation", "test"):
        chosen = np.flatnonzero(assigned == split) if len(kept) else np.empty(0, dtype=int)
        rows = np.asarray(kept, dtype=int)[chosen]
        parts[split] = (feedback.inputs[rows], target_array[chosen], feedback.ids[rows].astype(str))
    return parts, dropped
