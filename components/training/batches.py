"""Training inputs read a batch at a time: raw rows (a memory-mapped split) made network-ready as
each batch is drawn, so that training holds the raw split's pages it reads and one batch, not a
network-ready copy of the whole split (four times the bytes of 8-bit images, and on top of them)."""

from __future__ import annotations

import mmap
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset


class TransformedRows:
    """Rows of ``raw`` made network-ready by ``transform`` when they are read. Indexed like an array
    by a slice or an array of positions (``rows[10:20]``, ``rows[[3, 1]]``): the result is the
    transformed rows. ``np.asarray(rows)`` transforms them all (what needs the whole split at once)."""

    def __init__(self, raw: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.raw = raw
        self.transform = transform

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.raw), *self.transform(np.asarray(self.raw[:1])).shape[1:])

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.transform(np.asarray(self.raw[index : index + 1]))[0]
        return self.transform(np.asarray(self.raw[index]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.transform(np.asarray(self.raw))
        return whole if dtype is None else whole.astype(dtype)

    def subset(self, positions: np.ndarray) -> TransformedRows:
        """The rows at ``positions`` (their raw values copied), still transformed when read."""
        return TransformedRows(np.asarray(self.raw[positions]), self.transform)

    def __reduce__(self):
        """Pickled (for the processes of a training on several devices) with a memory map of a whole
        array as the file and place it maps, not its bytes: each process maps the file again rather
        than holding a copy of the split. A slice of a map, or an array in memory, goes as its bytes."""
        raw = self.raw
        if isinstance(raw, np.memmap) and isinstance(raw.base, mmap.mmap) and raw.filename:
            order = "F" if raw.flags.f_contiguous and not raw.flags.c_contiguous else "C"
            return _mapped_rows, (raw.filename, raw.dtype, raw.offset, raw.shape, order, self.transform)
        return TransformedRows, (raw, self.transform)


def _mapped_rows(filename, dtype, offset, shape, order, transform) -> TransformedRows:
    return TransformedRows(np.memmap(filename, dtype=dtype, mode="r", offset=offset, shape=shape, order=order), transform)


def split_rows(splits, preprocessor, task_type: str, split: str) -> tuple[TransformedRows, np.ndarray]:
    """A split's rows, made network-ready a batch at a time, and its targets as the network learns them."""
    rows = TransformedRows(splits.features[split], preprocessor.transform)
    return rows, preprocessor.training_target(task_type, splits.targets[split])


class Batches(Dataset):
    """Inputs (an array or :class:`TransformedRows`) and targets, fetched a batch of positions at a
    time (PyTorch's ``__getitems__``): one indexing of each per batch, not one per sample."""

    def __init__(self, inputs, targets: np.ndarray) -> None:
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        inputs, targets = self.__getitems__([index])
        return inputs[0], targets[0]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(positions)
        return (
            torch.from_numpy(np.ascontiguousarray(self.inputs[rows])),
            torch.from_numpy(np.ascontiguousarray(self.targets[rows])),
        )


def as_batch(batch):
    """The DataLoader's collation of :meth:`Batches.__getitems__`, which already returns a batch."""
    return batch
