"""Processes that import the platform and PyTorch Lightning do not pay for Hugging Face transformers."""

import subprocess
import sys

from tests.conftest import PROJECT


def test_lightning_imports_without_transformers_and_trains_a_step():
    script = """
import sys
import components
import pytorch_lightning as pl
import torch
from torchmetrics.utilities import imports
assert 'transformers' not in sys.modules, 'torchmetrics imported transformers'
assert not imports._TRANSFORMERS_GREATER_EQUAL_4_4
from components.training.fit import fit_network
from components.models.mlp import MLP
features = torch.randn(32, 3).numpy(); targets = (features[:, 0] > 0).astype('int64')
result = fit_network(MLP(3, 2, 0, 8, 'relu', 0.0), 'classification', (features, targets), (features, targets),
                     {'learning_rate': 0.05}, max_epochs=2, batch_size=16, seed=0)
assert len(result.history) == 2 and 'transformers' not in sys.modules
print('ok')
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_a_stage_process_imports_no_prefect_until_a_flow_asks_for_its_task():
    """`python -m tasks.<stage>` (what dvc repro runs) does not pay Prefect's import; the flow still
    gets a Prefect task with the stage's name."""
    script = """
import sys
from tasks import data_preparation, deployment, model_formulation, monitoring, task_formulation, training
assert 'prefect' not in sys.modules, 'a stage module imported prefect'
from prefect import Task
stage = task_formulation.task_formulation
assert isinstance(stage._prefect_task(), Task) and stage.name == 'task_formulation' and stage.retries == 2
assert stage.with_options(retries=0).retries == 0 and stage.fn.__name__ == 'task_formulation'
print('ok')
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
