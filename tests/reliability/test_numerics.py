"""Outputs that are not numbers never pass as a model: the ONNX parity gate refuses them, and the text
network stays finite on texts with no known word."""

import numpy as np
import pytest
import torch
from torch import nn

from components.data.preparation import Preprocessor
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.errors import QualityGateError
from components.models import text


class NanForLargeInputs(nn.Module):
    """A linear model that answers NaN where the first feature is large, as a diverged network would."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def embed(self, features):
        return features

    def forward(self, features):
        broken = torch.where(
            features[:, :1] > 1.0, torch.full_like(features[:, :1], float("nan")), torch.ones_like(features[:, :1])
        )
        return self.linear(features) * broken


def test_parity_refuses_outputs_that_are_not_finite(tmp_path):
    raw = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    model = DeployableModel(NanForLargeInputs(), Preprocessor.fit(raw, "tabular"), "classification").eval()
    session = inference_session(export_onnx(model, raw[:2], tmp_path / "model.onnx"))
    broken = int(np.sum(((raw[:, 0] - raw[:, 0].mean()) / raw[:, 0].std()) > 1.0))
    assert broken > 0
    with pytest.raises(QualityGateError, match=f"{broken} of 64 test inputs give outputs that are not finite"):
        check_parity(model, session, raw, tolerance=1e-4)
    finite = raw[((raw[:, 0] - raw[:, 0].mean()) / raw[:, 0].std()) <= 1.0]
    assert check_parity(model, session, finite, tolerance=1e-4).non_finite == 0


@pytest.mark.parametrize("training", [True, False])
def test_a_transformer_text_network_is_finite_on_texts_without_a_known_word(training):
    torch.manual_seed(0)
    architecture = {"encoder": "transformer", "embedding_size": 16, "depth": 2, "width": 16, "dropout": 0.0}
    network = text.build([12], 3, architecture, cardinalities=[30]).train(training)
    codes = torch.randint(1, 30, (6, 12))
    codes[:2] = 0  # all padding or unknown words
    codes[2, 5:] = 0
    outputs = network(codes.float())
    assert torch.isfinite(outputs).all()
    # A text with words is answered as before: its padding positions stay masked.
    alone = network(codes[2:3].float())
    assert torch.allclose(alone, outputs[2:3], atol=1e-5)
