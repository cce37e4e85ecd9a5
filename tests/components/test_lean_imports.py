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
