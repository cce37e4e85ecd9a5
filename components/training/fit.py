"""Training a network on prepared arrays, and test metrics."""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from sklearn import metrics as sk_metrics
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, WeightedRandomSampler

from components.training.augmentation import AugmentationPolicy
from components.training.batches import Batches, TransformedRows, as_batch
from components.training.losses import build_loss
from components.training.module import SupervisedModule
from components.training.schedule import BudgetSchedule

LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")


@dataclass
class FitResult:
    network: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = float("-inf")
    best_loss: float = float("inf")
    best_epoch: int = -1
    stopped_early: bool = False
    reached_deadline: bool = False  # stopped by the time limit, with the best epoch it reached
    final_learning_rate: float = float("nan")  # where the schedule left the optimiser
    kept_starting_weights: bool = False  # the weights it started from scored a lower validation loss than any epoch
    devices: int = 1  # processes that trained it (Lightning's DDP beyond one)
    steps: int = 0  # optimiser steps of each process
    replicas_agree: bool | None = None  # several processes: whether their networks ended identical, as DDP keeps them


class _History(Callback):
    """Records each epoch's losses and score and forwards them to ``on_epoch``."""

    def __init__(self, on_epoch: Callable[[int, dict[str, float]], None] | None) -> None:
        self.rows: list[dict[str, float]] = []
        self.on_epoch = on_epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # Runs after the epoch's validation, once both the training loss and the validation
        # score of this epoch are in callback_metrics.
        row = {key: float(value) for key, value in trainer.callback_metrics.items()}
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(trainer.current_epoch, row)


class _Deadline(Callback):
    """Stops training early enough for the cut epoch's validation to end by the deadline.

    Lightning's ``max_time`` stops training at the time limit and then validates, so a run ends
    late by a validation pass (seconds for a wide network on thousands of images, on one thread).
    This reserves the last validation pass's duration; before the first one, an estimate from the
    training batches so far (a validation row costs about a third of a training row: no backward
    pass). The first batch, many times slower than the next ones (20 ms against 2.4 ms for a small
    MLP), is not timed: from it alone, a million-row run reserved more than the time left and stopped
    its final training after one batch. ``closing_passes`` reserves as many validation passes again
    for work that follows the training and must end by the same deadline (scoring the test split,
    comparing an ensemble). On several processes they agree at every step, in one all-reduce, on
    stopping (one that stopped alone would leave the others waiting for it) and on the schedule's clock.
    """

    def __init__(
        self, deadline: float, validation_rows: int, closing_passes: float = 0.0, schedule: BudgetSchedule | None = None
    ) -> None:
        self.deadline, self.validation_rows, self.closing_passes = deadline, validation_rows, closing_passes
        self.schedule = schedule
        self.validation_seconds: float | None = None
        self.reached = False
        self._rows, self._training_seconds, self._batch_started = 0, 0.0, 0.0
        self._validation_started = 0.0
        self._warmed_up = False  # the first batch is not timed

    def reserve(self) -> float:
        one_pass = self.validation_seconds
        if one_pass is None:
            one_pass = self._training_seconds / max(self._rows, 1) * self.validation_rows / 3.0
        return one_pass * (1.0 + self.closing_passes)

    def on_train_batch_start(self, trainer, module, batch, batch_index) -> None:
        self._batch_started = time.time()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        if self._warmed_up:
            self._rows += len(batch[1])
            self._training_seconds += time.time() - self._batch_started
        self._warmed_up = True
        stop = time.time() + self.reserve() >= self.deadline
        if trainer.world_size > 1:
            clock = self.schedule.clock() if self.schedule is not None else 0.0
            agreed = trainer.strategy.reduce(torch.tensor([float(stop), clock], device=module.device), reduce_op="max").tolist()
            stop = agreed[0] > 0
            if self.schedule is not None:
                self.schedule.agreed_clock = agreed[1]
        if stop:
            trainer.should_stop = True
            self.reached = True

    def on_validation_epoch_start(self, trainer, module) -> None:
        self._validation_started = time.time()

    def on_validation_epoch_end(self, trainer, module) -> None:
        self.validation_seconds = time.time() - self._validation_started


def _loader(
    features: np.ndarray | TransformedRows,
    targets: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
    class_weights: list[float] | None = None,
    every_process: bool = False,
) -> DataLoader:
    """Batches in order, shuffled, or (``class_weights``) drawn with replacement, each sample with its
    class's weight, so that every class is drawn about equally often; an epoch draws as many samples
    as there are. On several processes Lightning gives each its share of the training batches;
    ``every_process`` (validation): each process reads them all (a distributed sampler of one replica,
    which Lightning leaves as it is), so every process has the same scores and takes the same
    decisions (best epoch, stopping) at a cost of a validation pass, a third of as many training rows."""
    dataset = Batches(features, targets)
    if every_process:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=False)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=as_batch)
    generator = torch.Generator().manual_seed(seed)
    if class_weights is not None:
        weights = torch.tensor(class_weights, dtype=torch.float64)[torch.from_numpy(np.array(targets, dtype=np.int64))]
        sampler = WeightedRandomSampler(weights, num_samples=len(targets), replacement=True, generator=generator)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=as_batch)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=as_batch)


def training_precision() -> str:
    """Mixed precision on a GPU (bfloat16 where supported), full precision on the CPU."""
    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def fit_network(
    network: nn.Module,
    task_type: str,
    train: tuple[np.ndarray | TransformedRows, np.ndarray],
    validation: tuple[np.ndarray | TransformedRows, np.ndarray],
    hyperparameters: dict[str, Any],
    max_epochs: int,
    batch_size: int,
    seed: int,
    patience: int | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    loss: str | None = None,
    class_weights: list[float] | None = None,
    augmentation: dict | None = None,
    balancing: str = "loss",
    deadline: float | None = None,
    schedule: str = "budget_cosine",
    keep_best: bool = False,
    starting_weights_compete: bool = False,
    closing_passes: float = 0.0,
    devices: int = 1,
) -> FitResult:
    """Fits ``network`` with Lightning; with ``patience`` it stops early and restores the epoch of the
    lowest validation loss (``keep_best``: restores it without stopping early); without either, the
    best epoch is the best validation score (ties: lower loss) and the network is the last epoch's.

    Args:
        train: network-ready inputs (or :class:`TransformedRows`: raw rows made ready a batch at a
            time) and encoded targets.
        validation: the same for the validation split, which decides the best epoch.
        hyperparameters: ``learning_rate`` and optionally ``weight_decay``.
        on_epoch: called after every epoch with its index and metrics (progress, NNI reports).
        loss: a name of :func:`components.training.losses.build_loss` (default: by the task).
        class_weights: per class; with ``balancing`` ``loss`` they weight the loss, with ``sampler``
            they draw the training batches (the loss is then unweighted).
        augmentation: an :class:`AugmentationPolicy` as a dict, applied to training batches.
        deadline: a wall-clock time (``time.time()``) by which training ends: it stops within the
            running epoch early enough for that epoch's validation to finish by then, so even a cut
            first epoch has a score.
        schedule: the learning rate over the run (:mod:`components.training.schedule`): warm-up and
            cosine decay to zero at ``max_epochs`` or the deadline, whichever comes first; or constant.
        closing_passes: validation passes' worth of work after the training that must also end by
            the deadline (the test split's scoring, an ensemble's comparison): training stops earlier by as much.
        starting_weights_compete: the network arrives trained (a trial's weights): its validation loss
            before training competes with every epoch's, and it is kept if none is lower.
        devices: beyond one, Lightning's DDP, one process per device (on the CPU: processes and gloo),
            each with ``batch_size`` rows a step; this must run in a process Lightning may start again
            for every further device (the module distributed.py beside this one). Only the first process
            returns the whole result; the others return their network alone.
    """
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(treespec|does not have many workers|LeafSpec|module\(s\) in eval mode).*")
    pl.seed_everything(seed, workers=True, verbose=False)
    initialise = getattr(network, "initialise_from_data", None)
    if callable(initialise):  # data-dependent initialisation (the rocket family's biases and ridge head)
        initialise(train[0], train[1], task_type)
    module = SupervisedModule(
        network,
        task_type,
        float(hyperparameters["learning_rate"]),
        float(hyperparameters.get("weight_decay", 0.0)),
        build_loss(loss, None if balancing == "sampler" else class_weights) if loss else None,
        AugmentationPolicy.model_validate(augmentation) if augmentation else None,
        BudgetSchedule(
            total_steps=max_epochs * math.ceil(math.ceil(len(train[1]) / devices) / batch_size),
            seconds=None if deadline is None else max(deadline - time.time(), 0.001),
            kind=schedule,
        ),
        float(hyperparameters.get("backbone_learning_rate_ratio", 1.0)),
    )
    if devices > 1:
        module.schedule.agreed_clock = 0.0
    history = _History(on_epoch)
    callbacks: list[Callback] = [history]
    validation_loader = _loader(*validation, batch_size=max(256, batch_size), shuffle=False, seed=seed, every_process=devices > 1)
    starting = None
    if starting_weights_compete:
        starting = (copy.deepcopy(module.state_dict()), _validation_loss(module, validation_loader))
    with tempfile.TemporaryDirectory(prefix="dlautoml-checkpoints-") as checkpoint_folder:
        checkpoint = None
        early_stopping = None
        if patience is not None:
            # The validation loss, not the score: on a small validation split the accuracy saturates
            # within a few epochs while the model still improves.
            early_stopping = EarlyStopping(monitor="val_loss", mode="min", patience=patience)
            callbacks.append(early_stopping)
        if patience is not None or keep_best:
            checkpoint = ModelCheckpoint(dirpath=checkpoint_folder, monitor="val_loss", mode="min", save_top_k=1)
            callbacks.append(checkpoint)
        stopper = None
        if deadline is not None:
            stopper = _Deadline(deadline, len(validation[1]), closing_passes, module.schedule)
            callbacks.append(stopper)
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator="auto",
            devices=devices,
            strategy="ddp" if devices > 1 else "auto",
            logger=False,
            enable_checkpointing=checkpoint is not None,
            enable_progress_bar=False,
            enable_model_summary=False,
            precision=training_precision(),
            deterministic=True,
            callbacks=callbacks,
            num_sanity_val_steps=0,
        )
        trainer.fit(
            module,
            _loader(
                *train,
                batch_size=batch_size,
                shuffle=True,
                seed=seed,
                class_weights=class_weights if balancing == "sampler" else None,
            ),
            validation_loader,
        )
        final_learning_rate = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")
        replicas_agree = _replicas_agree(trainer, module) if trainer.world_size > 1 else None
        if trainer.global_rank > 0:
            return FitResult(network=module.network, devices=trainer.world_size)  # the first process reports
        if checkpoint is not None and checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state)
    scores = [row.get("val_score", float("-inf")) for row in history.rows]
    losses = [row.get("val_loss", float("inf")) for row in history.rows]
    if not scores:
        best_epoch = -1
    elif checkpoint is not None:
        best_epoch = int(np.argmin(losses))
    else:  # the best score, ties going to the lower validation loss
        best_epoch = min(range(len(scores)), key=lambda epoch: (-scores[epoch], losses[epoch]))
    kept_starting = bool(starting is not None and scores and starting[1] < losses[best_epoch])
    if kept_starting:
        module.load_state_dict(starting[0])
    network = module.network.cpu().eval()
    return FitResult(
        network=network,
        history=history.rows,
        best_score=float(scores[best_epoch]) if scores else float("-inf"),
        best_loss=float(losses[best_epoch]) if scores else float("inf"),
        best_epoch=best_epoch,
        stopped_early=bool(early_stopping is not None and early_stopping.stopped_epoch > 0),
        reached_deadline=bool(stopper is not None and stopper.reached),
        final_learning_rate=final_learning_rate,
        kept_starting_weights=kept_starting,
        devices=trainer.world_size,
        steps=trainer.global_step,
        replicas_agree=replicas_agree,
    )


def _replicas_agree(trainer: pl.Trainer, module: SupervisedModule) -> bool:
    """Whether every process ended with the same weights (each parameter's sum, gathered from all)."""
    sums = torch.stack([parameter.detach().double().sum() for parameter in module.parameters()])
    gathered = trainer.strategy.all_gather(sums.to(module.device))
    return bool(all(torch.equal(gathered[0], row) for row in gathered[1:]))


@torch.no_grad()
def _validation_loss(module: SupervisedModule, loader: DataLoader) -> float:
    """The module's loss over the validation batches, weighted by their sizes (as Lightning logs it)."""
    module.eval()
    total, count = 0.0, 0
    for inputs, targets in loader:
        total += float(module.loss_of(module(inputs), targets)) * len(targets)
        count += len(targets)
    module.train()
    return total / max(count, 1)


@torch.no_grad()
def predict(network: nn.Module, features: np.ndarray | TransformedRows, batch_size: int = 1024) -> np.ndarray:
    """Raw network outputs (logits or standardised regression values) for network-ready inputs
    (or :class:`TransformedRows`, made ready a batch at a time)."""
    network.eval()
    outputs = [
        network(torch.from_numpy(np.ascontiguousarray(features[start : start + batch_size])))
        for start in range(0, len(features), batch_size)
    ]
    return torch.cat(outputs).numpy()


def class_report(outputs: np.ndarray, targets: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class on the test split (scikit-learn's report)."""
    report = sk_metrics.classification_report(
        targets,
        outputs.argmax(axis=1),
        labels=list(range(len(class_names))),
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )
    rows = [{"class": name, **report[name]} for name in class_names]
    return pd.DataFrame(rows).rename(columns={"f1-score": "f1"})


def evaluation_metrics(task_type: str, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 for classification; R^2, RMSE and MAE (original units) for regression.

    ``outputs`` are logits for classification and predictions in the target's units for regression.
    """
    if task_type == "classification":
        predicted = outputs.argmax(axis=1)
        return {
            "accuracy": float(sk_metrics.accuracy_score(targets, predicted)),
            "macro_f1": float(sk_metrics.f1_score(targets, predicted, average="macro")),
        }
    predicted = outputs.reshape(-1)
    return {
        "r2": float(sk_metrics.r2_score(targets, predicted)),
        "rmse": float(np.sqrt(sk_metrics.mean_squared_error(targets, predicted))),
        "mae": float(sk_metrics.mean_absolute_error(targets, predicted)),
    }
