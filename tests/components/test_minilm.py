"""The text transfer family: a sentence encoder from a wheel (checked, never downloaded), its WordPiece
tokeniser as a table inside the network, the fine-tuning strategies, the kept embeddings of a linear
probe, and the exported ONNX graph that reads word codes."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from components.data.preparation import Preprocessor
from components.data.sources import load_dataset
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.errors import EnvironmentProblem
from components.models import minilm, pretrained
from components.models.families import build_network, choose_families
from components.training.fit import fit_network, predict
from tests.components.test_text import write_reviews

PROBE = {"fine_tuning": "linear_probe", "dropout": 0.0}


def _network(sentences: list[str], **architecture) -> tuple[minilm.PretrainedTextNetwork, torch.Tensor]:
    """A network over the sentences' own words, and the sentences as its word codes."""
    from components.data.text import build_vocabulary, encode_texts

    words, length = build_vocabulary(sentences)
    network = build_network(
        "minilm",
        [length],
        2,
        {**PROBE, **architecture},
        Preprocessor(modality="text", input_shape=[length], fill_values=[], means=[], scales=[], words=words),
    )
    return network, torch.from_numpy(encode_texts(sentences, words, length))


def test_the_weights_are_a_sentence_encoders():
    """Each sentence's nearest neighbour is its paraphrase, not a sentence that shares its words."""
    sentences = [
        "the delivery arrived two days late",
        "a cheap phone with an excellent camera",
        "my order came after the promised date",
        "this handset takes wonderful pictures for the price",
        "the soup was cold and tasteless",
        "dinner was bland and not even warm",
    ]
    network, codes = _network(sentences)
    with torch.no_grad():
        embeddings = torch.nn.functional.normalize(network.eval().encode(codes))
    similarity = embeddings @ embeddings.T - 2 * torch.eye(len(sentences))
    assert similarity.argmax(1).tolist() == [2, 3, 0, 1, 5, 4]


def test_word_codes_become_packed_pieces_between_cls_and_sep():
    sentences = ["unbelievably good food", "food is fine"]
    network, codes = _network(sentences)
    cls, sep = minilm.special_ids()
    tokeniser = minilm._tokeniser()
    ids = network.token_ids(codes)
    for row, sentence in enumerate(sentences):
        # Each word's first PIECES_PER_WORD pieces ("unbelievably" has five), no gaps between words.
        pieces = [tokeniser.encode(word, add_special_tokens=False).ids[: minilm.PIECES_PER_WORD] for word in sentence.split()]
        expected = [cls, *(piece for word in pieces for piece in word), sep]
        assert ids[row, : len(expected)].tolist() == expected and not ids[row, len(expected) :].any()
    assert len(tokeniser.encode("unbelievably", add_special_tokens=False).ids) > minilm.PIECES_PER_WORD
    # Past MAX_TOKENS, the last pieces are cut and [SEP] still ends the row.
    long = minilm.build([200], 2, PROBE, words=["word"]).token_ids(torch.ones(1, 200))
    assert long.shape == (1, minilm.MAX_TOKENS) and long[0, -1] == sep and (long[0, 1:-1] > 0).all()


@pytest.mark.parametrize(("strategy", "trained_layers"), [("linear_probe", 0), ("top_blocks", 2), ("full", 6)])
def test_a_strategy_trains_its_layers_and_keeps_embeddings_only_when_frozen(strategy, trained_layers):
    network, codes = _network(["a fine day", "a dull day", "nothing"], fine_tuning=strategy)
    layers = network.backbone.encoder.layer
    assert sum(all(p.requires_grad for p in layer.parameters()) for layer in layers) == trained_layers
    assert network.backbone.embeddings.word_embeddings.weight.requires_grad == (strategy == "full")
    assert layers[0].training == (strategy == "full") and layers[-1].training == (strategy != "linear_probe")
    network.eval()
    first = network.embed(codes)
    assert len(network._frozen_outputs) == (0 if strategy == "full" else 3)
    assert torch.allclose(first, network.encode(codes), atol=1e-5)
    assert torch.allclose(network.embed(codes), first, atol=1e-5)  # from what it kept
    # The same as BertModel's own forward, averaged over the real tokens.
    ids = network.token_ids(codes)
    hidden = network.backbone(input_ids=ids, attention_mask=(ids > 0).long()).last_hidden_state
    weights = (ids > 0).unsqueeze(2).float()
    assert torch.allclose(first, (hidden * weights).sum(1) / weights.sum(1), atol=1e-5)
    network.load_state_dict(network.state_dict())
    assert not network._frozen_outputs


def test_a_linear_probe_learns_reviews_and_exports_reading_word_codes(tmp_path: Path):
    dataset = load_dataset(write_reviews(tmp_path / "reviews.csv", count=120), "text", "sentiment")
    labels = np.unique(dataset.target, return_inverse=True)[1]
    vocabulary = dataset.categories["review"]
    preprocessor = Preprocessor.fit(dataset.features[:60], "text", None, {0: len(vocabulary)}, vocabulary=vocabulary)
    assert set(preprocessor.words) <= set(vocabulary) and len(preprocessor.words) == preprocessor.cardinalities[0] - 1
    encoded = preprocessor.transform(dataset.features)
    torch.manual_seed(0)
    network = build_network("minilm", list(encoded.shape[1:]), 2, PROBE, preprocessor)
    fitted = fit_network(
        network,
        "classification",
        (encoded[:60], labels[:60]),
        (encoded[60:80], labels[60:80]),
        {"learning_rate": 0.01, "weight_decay": 1e-4},
        max_epochs=10,
        batch_size=16,
        seed=0,
    )
    accuracy = (predict(fitted.network.eval(), encoded[80:]).argmax(1) == labels[80:]).mean()
    assert accuracy >= 0.9  # two sentiment words among 6 to 14 others: 1.00 here
    model = DeployableModel(fitted.network, preprocessor, "classification").eval()
    session = inference_session(export_onnx(model, dataset.features[:4], tmp_path / "minilm.onnx"), 1)
    assert check_parity(model, session, dataset.features, 1e-3).class_agreement == 1.0
    assert model.embed(torch.from_numpy(dataset.features[:3])).shape == (3, minilm.FEATURES)
    assert not fitted.network.keeps_frozen_outputs  # deployed: every input goes through the encoder
    # The graph runs the batch's longest text, not MAX_TOKENS: its length is a Range over the real pieces
    # (a batch of 64 five-word texts ran in 0.23 s here, one of forty words in 2.3 s).
    graph = onnx.load(str(tmp_path / "minilm.onnx")).graph
    assert "Range" in {node.op_type for node in graph.node}


def test_a_corrupt_weights_file_or_a_missing_extra_is_a_one_line_error(monkeypatch):
    recorded = pretrained.WEIGHTS[minilm.WEIGHTS]
    monkeypatch.setitem(pretrained.WEIGHTS, minilm.WEIGHTS, recorded.__class__(**{**vars(recorded), "sha256": "0" * 64}))
    minilm._archive.cache_clear()
    with pytest.raises(EnvironmentProblem) as corrupt:
        minilm.build([4], 2, PROBE, words=["word"])
    assert "model.zip is corrupt" in str(corrupt.value) and "\n" not in str(corrupt.value)
    monkeypatch.setitem(pretrained.WEIGHTS, minilm.WEIGHTS, recorded.__class__(**{**vars(recorded), "package": "absent_pkg"}))
    assert not minilm.available()
    with pytest.raises(EnvironmentProblem, match="optional extra 'transfer'"):
        choose_families("text", "minilm")
    monkeypatch.setitem(pretrained.WEIGHTS, minilm.WEIGHTS, recorded)
    minilm._archive.cache_clear()


def test_auto_lets_the_encoder_compete_for_text_only_where_a_gpu_is(monkeypatch):
    from components.models import families

    assert [family.name for family in choose_families("text")[0]] == ["text"]
    monkeypatch.setattr(families, "_has_gpu", lambda: True)
    assert [family.name for family in choose_families("text")[0]] == ["text", "minilm"]
    assert pretrained.encoder_tags(families.FAMILIES["minilm"])["dlautoml.encoder"] == minilm.WEIGHTS
