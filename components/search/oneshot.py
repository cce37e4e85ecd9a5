"""One-shot neural architecture search with NNI (``nni.nas``): a family's model space (images:
components.models.cnn_space, sequences: sequence_space, text: text_space) trained once as a weight-sharing supernet,
in this process, under a deadline.

DARTS relaxes every ``LayerChoice`` / ``InputChoice`` / ``Repeat`` into a softmax-weighted mixture
and learns those weights on the validation batches while the supernet's weights learn on the
training batches; the exported architecture takes each choice's strongest candidate. The search
costs about one training of the supernet, not one per candidate; the chosen architecture is then
trained on its own (the mixture's weights do not carry over to a single path).
"""

from __future__ import annotations

import atexit
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import TensorDataset

from components.search.budget import duration
from components.search.nni_search import require_nni_filelock

# NNI's one-shot strategies, by the name params.yaml uses. RandomOneShot (single-path) was tried on
# this space and left out: its supernet learnt slowly here (training accuracy 0.38 after 5 epochs on
# the digits, DARTS 0.98 after one), and NNI exports an arbitrary path from it, so choosing a path
# is a second search.
STRATEGIES = {"darts": "DARTS"}
# The supernet trains on at most this many training (and validation) rows, and on images pooled to
# half their side where the space has the same choices there (its module's proxy_shape): low-fidelity
# proxies that keep the one-shot search to a share of the budget on large data.
MAX_ROWS = 4000
ARCHITECTURE_LEARNING_RATE = 3e-3
NNI_LOGGERS = ("nni", "pytorch_lightning", "lightning.pytorch", "lightning_fabric")


@dataclass
class OneShotRequest:
    strategy: str  # a key of STRATEGIES
    space: ModuleType  # the family's model-space module (components.models.families.Family.space)
    task_type: str
    input_shape: list[int]
    output_size: int
    train: tuple[np.ndarray, np.ndarray]  # network-ready inputs and encoded targets
    validation: tuple[np.ndarray, np.ndarray]
    working_folder: Path
    deadline: float  # time.time() at which the supernet's training stops
    max_epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    progress: Callable[[str], None] = print
    accelerator: str = "auto"  # Lightning's: the GPU where there is one
    space_options: dict = field(default_factory=dict)  # for the space's model_space: cardinalities (text: the vocabulary)


@dataclass
class OneShotResult:
    architecture: dict  # the space's labels and readable values (its module's ``readable``)
    strategy: str
    epochs: int
    seconds: float
    supernet_score: float  # the supernet's last training score (accuracy, or minus the MSE)
    probabilities: dict[str, dict[str, float]]  # DARTS: each choice's candidates' learnt weights


FINISHED_FILE = "oneshot.json"  # in the search's working folder: the last one-shot search that finished


def keep_finished(folder: Path, fingerprint: str, result: OneShotResult) -> None:
    """Records a finished one-shot search, so that a run killed after it (during the multi-trial search
    that tunes its architecture) reuses it: a new supernet, stopped by the clock at another epoch, could
    choose another architecture, and the interrupted search's finished trials would be lost with it."""
    path = Path(folder) / FINISHED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".writing")
    staging.write_text(json.dumps({"fingerprint": fingerprint, "result": vars(result)}))
    staging.replace(path)


def finished_before(folder: Path, fingerprint: str) -> OneShotResult | None:
    """The one-shot search of the same data, space and settings that an earlier run finished, if any."""
    try:
        data = json.loads((Path(folder) / FINISHED_FILE).read_text())
        return OneShotResult(**data["result"]) if data.get("fingerprint") == fingerprint else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# strategy auto: one-shot search from this many training rows (where the family has a model space).
# benchmarks/search_quality.py: on 10,000 MNIST digits (6,000 training rows) trials of the whole space
# take a minute or two each and DARTS then TPE scored higher; on the 1,000 training rows of the
# bundled digits trials take seconds and TPE over the whole space scored higher.
ONESHOT_MINIMUM_ROWS = 2000


def choose_strategy(setting: str, has_model_space: bool, train_rows: int, families: int = 1) -> tuple[str, str]:
    """The strategy to run for ``training.strategy`` (``auto`` resolved), and why. Where several
    families compete, one-shot search (one family's supernet) gives way to TPE over all of them."""
    if families > 1 and (setting == "auto" or setting in STRATEGIES):
        reason = f"{families} families compete, and one-shot search trains one family's supernet"
        if setting == "auto":
            return "tpe", f"auto: {reason}"
        return "tpe", f"{setting} set in params.yaml, but {reason} (model_formulation.family picks one)"
    if setting != "auto":
        return setting, "set in params.yaml"
    if has_model_space and train_rows >= ONESHOT_MINIMUM_ROWS:
        return "darts", f"auto: {train_rows:,} training rows, where one supernet costs less than trials of the whole space"
    if has_model_space:
        return "tpe", f"auto: {train_rows:,} training rows, few enough for trials of the whole space"
    return "tpe", "auto: this family has no model space for one-shot search"


# Left to the multi-trial search after the one-shot one: a capacity knob that a mixture of all widths
# judges poorly (DARTS picked the narrowest width on the digits, and its trials scored lower).
TUNED_AFTER = ("width",)


def pin_architecture(search_space: dict, architecture: dict) -> dict:
    """The multi-trial space with the one-shot search's operations, skips and depths fixed: what is
    left to search are the width and the training hyper-parameters (and dropout)."""
    return {
        key: {"_type": "choice", "_value": [architecture[key]]} if key in architecture and key not in TUNED_AFTER else spec
        for key, spec in search_space.items()
    }


def architecture_table(space: ModuleType, architecture: dict, input_shape, probabilities: dict | None = None):
    """The chosen operations, one row per cell (a DataFrame); with DARTS's weights, how sure the
    search was."""
    import pandas as pd

    table = pd.DataFrame(space.describe(architecture, input_shape))
    if probabilities:
        table["operation_weight"] = [
            probabilities.get(f"{space.choice_label(row)}_op", {}).get(row.operation, float("nan")) for row in table.itertuples()
        ]
        skip = [
            probabilities.get(f"{space.choice_label(row)}_skip", {}).get(str(space.SKIP_CHOICES.index(row.skip)))
            for row in table.itertuples()
        ]
        table["skip_weight"] = [float("nan") if value is None else value for value in skip]
    return table


class _EpochLines(pl.Callback):
    def __init__(self, say: Callable[[str], None], started: float, deadline: float, max_epochs: int) -> None:
        self.say, self.started, self.deadline, self.max_epochs = say, started, deadline, max_epochs
        self.epochs, self.score = 0, float("nan")
        self.probabilities: dict[str, dict[str, float]] = {}

    def on_train_epoch_end(self, trainer, module) -> None:
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
        self.score = metrics.get("train_acc", -metrics.get("train_mse", float("nan")))
        self.epochs = trainer.current_epoch + 1
        for key, value in metrics.items():  # DARTS logs "prob/<label>/<candidate>"
            if key.startswith("prob/"):
                label, candidate = key[len("prob/") :].rsplit("/", 1)
                self.probabilities.setdefault(label, {})[candidate] = value
        self.say(
            f"one-shot supernet epoch {self.epochs}/{self.max_epochs}: training score {self.score:.4f}; "
            f"{duration(time.time() - self.started)} spent, "
            f"{duration(self.deadline - time.time())} left"
        )


def _dataset(features: np.ndarray, targets: np.ndarray, rows: int, seed: int, pooled: bool):
    if len(targets) > rows:
        keep = np.random.default_rng(seed).choice(len(targets), rows, replace=False)
        features, targets = features[keep], targets[keep]
    inputs = torch.from_numpy(np.ascontiguousarray(features))
    if pooled:  # the low-resolution proxy: images pooled 2x2
        inputs = torch.nn.functional.avg_pool2d(inputs, 2)
    return TensorDataset(inputs, torch.from_numpy(targets))


def run_oneshot(request: OneShotRequest) -> OneShotResult:
    """Trains the supernet until its epochs or its deadline, and exports the chosen architecture."""
    from nni.nas.evaluator.pytorch import Classification, DataLoader, Regression
    from nni.nas.experiment import NasExperiment
    from nni.nas.strategy import DARTS
    from nni.runtime.log import silence_stdout

    require_nni_filelock()
    silence_stdout()  # NNI's experiment log file keeps its lines; progress goes through request.progress
    for name in NNI_LOGGERS:  # NNI warns of settings that one-shot strategies ignore, on every call
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|training_service|Checkpoint callback).*")
    pl.seed_everything(request.seed, workers=True, verbose=False)
    started = time.time()
    lines = _EpochLines(request.progress, started, request.deadline, request.max_epochs)
    proxy = request.space.proxy_shape(request.input_shape)
    loaders = {
        "train_dataloaders": DataLoader(
            _dataset(*request.train, MAX_ROWS, request.seed, proxy is not None), batch_size=request.batch_size, shuffle=True
        ),
        "val_dataloaders": DataLoader(
            _dataset(*request.validation, MAX_ROWS, request.seed, proxy is not None), batch_size=request.batch_size
        ),
    }
    trainer = {
        "max_epochs": request.max_epochs,
        "max_time": timedelta(seconds=max(request.deadline - time.time(), 1.0)),
        "accelerator": request.accelerator,
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "callbacks": [lines],
    }
    if request.task_type == "classification":
        evaluator = Classification(
            learning_rate=request.learning_rate, num_classes=request.output_size, export_onnx=False, **loaders, **trainer
        )
    else:
        evaluator = Regression(learning_rate=request.learning_rate, export_onnx=False, **loaders, **trainer)
    # Ten times NNI's default architecture learning rate: a budget of minutes gives the supernet a few
    # epochs, not DARTS's fifty, and the default barely moves the choices from uniform in that.
    strategy = DARTS(arc_learning_rate=ARCHITECTURE_LEARNING_RATE)
    space = request.space.model_space(proxy or request.input_shape, request.output_size, **request.space_options)
    experiment = NasExperiment(space, evaluator, strategy)
    experiment.config.experiment_working_directory = str(Path(request.working_folder).resolve())
    request.progress(
        f"one-shot search ({STRATEGIES[request.strategy]}): training the supernet of the model space "
        f"for up to {request.max_epochs} epochs or {duration(request.deadline - time.time())}"
        + (
            f", on {'x'.join(map(str, proxy[1:]))} copies of the images (a low-resolution proxy with the same choices)"
            if proxy
            else ""
        )
    )
    experiment.run()
    # NNI registers the experiment's stop to run again at exit, when it logs to closed streams.
    atexit.unregister(experiment.stop)
    architecture = request.space.readable(experiment.export_top_models(top_k=1, formatter="dict")[0])
    return OneShotResult(
        architecture, STRATEGIES[request.strategy], lines.epochs, time.time() - started, lines.score, lines.probabilities
    )
