"""Greedy ensemble selection: weights from validation predictions, the ensemble network's outputs,
and the choice kept only when it scores higher."""

import numpy as np
import pytest
import torch
from torch import nn

from components.search.ensemble import Ensemble, choose_ensemble, greedy_selection


def test_selection_mixes_complementary_candidates():
    # Candidate 0 is right on the first half, 1 on the second, 2 is uniform: the mixture of 0 and 1
    # has a lower log-loss than either alone, and the uniform one is never drawn.
    targets = np.array([0, 0, 1, 1])
    first = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    second = np.array([[0.4, 0.6], [0.4, 0.6], [0.1, 0.9], [0.1, 0.9]])
    uniform = np.full((4, 2), 0.5)
    counts = greedy_selection([first, second, uniform], targets, "classification", rounds=10)
    assert counts[0] > 0 and counts[1] > 0 and counts[2] == 0 and sum(counts) == 10


def test_selection_of_regressors_averages_opposite_errors():
    targets = np.zeros(5)
    counts = greedy_selection(
        [np.full((5, 1), 1.0), np.full((5, 1), -1.0), np.full((5, 1), 3.0)], targets, "regression", rounds=4
    )
    assert counts == [2, 2, 0]


class Fixed(nn.Module):
    """Returns the given logits for every input (a network whose outputs the test controls)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32))

    def forward(self, features):
        return self.logits[features[:, 0].long()]

    def embed(self, features):
        return features


def test_ensemble_returns_log_probabilities_of_the_weighted_average():
    a, b = Fixed([[2.0, 0.0], [0.0, 2.0]]), Fixed([[0.0, 1.0], [1.0, 0.0]])
    ensemble = Ensemble([a, b], [0.75, 0.25], "classification")
    features = torch.tensor([[0.0], [1.0]])
    expected = 0.75 * torch.softmax(a(features), 1) + 0.25 * torch.softmax(b(features), 1)
    assert torch.allclose(torch.softmax(ensemble(features), 1), expected, atol=1e-6)
    assert torch.equal(ensemble.embed(features), features)  # the heaviest member's


def accuracy(outputs):
    return float((outputs.argmax(1) == np.array([0, 0, 1, 1])).mean())


def test_the_ensemble_is_kept_only_when_it_scores_higher():
    features = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    targets = np.array([0, 0, 1, 1])
    # The single network is wrong on row 2, the trial on row 1: confident where right, unsure where wrong.
    single = Fixed([[3.0, 0.0], [3.0, 0.0], [0.2, 0.0], [0.0, 3.0]])
    trial = Fixed([[3.0, 0.0], [0.0, 0.2], [0.0, 3.0], [0.0, 3.0]])
    choice = choose_ensemble([("final", {}, single), ("trial 2", {}, trial)], features, targets, "classification", accuracy)
    assert choice.single_score == 0.75 and choice.ensemble_score == 1.0 and choice.network is not None
    assert [member["label"] for member in choice.members] == ["final", "trial 2"]
    assert sum(member["weight"] for member in choice.members) == pytest.approx(1.0)
    refused = choose_ensemble(
        [("final", {}, single), ("trial 2", {}, trial)], features, targets, "classification", accuracy, lambda network: False
    )
    assert refused.network is None and "hardware limit" in refused.reason
    alone = choose_ensemble([("final", {}, trial), ("trial 2", {}, trial)], features, targets, "classification", accuracy)
    assert alone.network is None


def test_a_gain_within_the_margin_keeps_the_single_network():
    features = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    targets = np.array([0, 0, 1, 1])
    single = Fixed([[3.0, 0.0], [3.0, 0.0], [0.2, 0.0], [0.0, 3.0]])
    trial = Fixed([[3.0, 0.0], [0.0, 0.2], [0.0, 3.0], [0.0, 3.0]])
    candidates = [("final", {}, single), ("trial 2", {}, trial)]
    # 1.0 against 0.75: kept with a margin of 0.2, refused with one of 0.3 (a standard error on few rows).
    assert choose_ensemble(candidates, features, targets, "classification", accuracy, margin=lambda s: 0.2).network is not None
    refused = choose_ensemble(candidates, features, targets, "classification", accuracy, margin=lambda s: 0.3)
    assert refused.network is None and "not above 1.0500" in refused.reason
