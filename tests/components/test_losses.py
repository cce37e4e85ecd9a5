"""The loss follows the data: weighted cross-entropy under imbalance, Huber for heavy-tailed targets;
focal loss is cross-entropy when gamma is 0 and down-weights easy examples otherwise."""

import numpy as np
import pytest
import torch
from torch import nn

from components.training.losses import FocalLoss, build_loss, choose_loss, class_weights


def test_balanced_classes_get_cross_entropy_and_imbalanced_get_weights():
    balanced = np.repeat([0, 1, 2], 30)
    assert choose_loss("classification", balanced, 3).name == "cross_entropy"
    imbalanced = np.array([0] * 90 + [1] * 10)
    choice = choose_loss("classification", imbalanced, 2)
    assert choice.name == "weighted_cross_entropy" and "9.0x" in choice.reason
    assert choice.class_weights[1] / choice.class_weights[0] == pytest.approx(9.0)
    assert np.mean(choice.class_weights) == pytest.approx(1.0)
    focal = choose_loss("classification", imbalanced, 2, requested="focal")
    assert focal.name == "focal" and focal.class_weights is not None


def test_heavy_tailed_regression_targets_get_huber():
    rng = np.random.default_rng(0)
    assert choose_loss("regression", rng.normal(size=500), 1).name == "mse"
    assert choose_loss("regression", rng.standard_t(2, size=500), 1).name == "huber"


def test_a_loss_that_does_not_fit_the_task_is_refused():
    with pytest.raises(ValueError, match="does not fit a regression task"):
        choose_loss("regression", np.zeros(10), 1, requested="focal")


def test_class_weights_ignore_absent_classes():
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights[2] == 0.0 and weights[1] == pytest.approx(3 * weights[0])


def test_focal_loss():
    logits = torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0]])
    targets = torch.tensor([0, 0, 0])
    assert FocalLoss(gamma=0.0)(logits, targets) == pytest.approx(nn.CrossEntropyLoss()(logits, targets).item())
    per_example = [FocalLoss()(logits[i : i + 1], targets[i : i + 1]).item() for i in range(3)]
    cross_entropy = [nn.CrossEntropyLoss()(logits[i : i + 1], targets[i : i + 1]).item() for i in range(3)]
    assert per_example[0] / cross_entropy[0] < 0.01 < per_example[2] / cross_entropy[2]  # easy examples count less
    weighted = build_loss("focal", [1.0, 3.0])
    assert weighted(logits, torch.tensor([1, 1, 1])) > FocalLoss()(logits, torch.tensor([1, 1, 1]))


def test_a_weighted_sampler_instead_of_weights_in_the_loss():
    imbalanced = np.array([0] * 90 + [1] * 10)
    choice = choose_loss("classification", imbalanced, 2, balancing="sampler")
    assert choice.name == "cross_entropy" and choice.balancing == "sampler" and "weighted sampler" in choice.reason
    assert choice.class_weights[1] / choice.class_weights[0] == pytest.approx(9.0)
    assert choose_loss("classification", np.repeat([0, 1], 50), 2, balancing="sampler").balancing == "none"
    assert choose_loss("classification", imbalanced, 2).balancing == "loss"
    with pytest.raises(ValueError, match="would both correct the imbalance"):
        choose_loss("classification", imbalanced, 2, requested="weighted_cross_entropy", balancing="sampler")


def test_the_weighted_sampler_draws_every_class_about_equally_often():
    from components.training.fit import _loader

    features = np.zeros((1000, 2), dtype=np.float32)
    targets = np.array([0] * 900 + [1] * 100)
    weights = class_weights(targets, 2)
    drawn = np.concatenate([batch[1].numpy() for batch in _loader(features, targets, 50, True, 0, weights)])
    assert len(drawn) == 1000 and 0.42 < drawn.mean() < 0.58
    plain = np.concatenate([batch[1].numpy() for batch in _loader(features, targets, 50, True, 0)])
    assert plain.mean() == pytest.approx(0.1)
