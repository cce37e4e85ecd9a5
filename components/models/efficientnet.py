"""The image transfer family: an ImageNet-pretrained EfficientNet-Lite0 backbone and a new head.

The network takes the platform's standardised pixels and, inside itself (so inside the exported ONNX
graph), undoes the standardisation, repeats a grey channel three times, resizes to the searched
resolution and normalises as EfficientNet-Lite expects (pixels in [0, 1] to about [-1, 1]: mean 0.498,
standard deviation 0.502, TensorFlow's Lite recipe). How much of the backbone trains is searched
(components.models.fine_tuning): a linear probe, the last ``TOP_BLOCKS`` inverted-residual blocks and
the head convolution, or everything. The pretrained file is checked
against its recorded SHA-256 (components.models.pretrained) each time a network is built from it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from components.models.fine_tuning import STRATEGIES, FineTunedNetwork
from components.models.pretrained import missing_extra, weights_file

WEIGHTS = "efficientnet_lite0"
FEATURES = 1280
TOP_BLOCKS = 4  # of Lite0's 16 blocks: its last two stages (192 and 320 channels)
LITE_MEAN, LITE_SCALE = 0.498, 0.502
SEARCH_SPACE = {
    "resolution": {"_type": "choice", "_value": [64, 96, 128]},
    "fine_tuning": {"_type": "choice", "_value": list(STRATEGIES)},
    "dropout": {"_type": "choice", "_value": [0.0, 0.2, 0.4]},
    "learning_rate": {"_type": "loguniform", "_value": [3e-4, 3e-2]},
    "backbone_learning_rate_ratio": {"_type": "choice", "_value": [0.03, 0.1, 0.3]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}
ARCHITECTURE_KEYS = ("resolution", "fine_tuning", "dropout")
# A linear probe at a low resolution (cheap, strong on small data), then the top blocks tuned at a
# higher one (what fine-tuning guides recommend first when there is more data).
PORTFOLIO = (
    {
        "resolution": 64,
        "fine_tuning": "linear_probe",
        "dropout": 0.2,
        "learning_rate": 3e-3,
        "backbone_learning_rate_ratio": 0.1,
        "weight_decay": 1e-4,
    },
    {
        "resolution": 96,
        "fine_tuning": "top_blocks",
        "dropout": 0.2,
        "learning_rate": 3e-3,
        "backbone_learning_rate_ratio": 0.1,
        "weight_decay": 1e-4,
    },
)


def _backbone(resolution: int) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights (verified), without its 1000-class layer."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise missing_extra("the EfficientNet-Lite implementation (package efficientnet-lite-pytorch)") from error
    path = weights_file(WEIGHTS)
    network = EfficientNet.from_name("efficientnet-lite0", image_size=resolution)
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    del network._fc
    return network


class PretrainedImageNetwork(FineTunedNetwork):
    def __init__(
        self,
        input_shape: list[int],
        output_size: int,
        resolution: int,
        fine_tuning: str,
        dropout: float,
        pixel_means: list[float] | None = None,
        pixel_scales: list[float] | None = None,
    ) -> None:
        super().__init__(fine_tuning)
        channels = int(input_shape[0])
        self.resolution = int(resolution)
        # The image preprocessor's per-channel standardisation, undone inside the network (kept in the
        # state dict, so that a network rebuilt without the preprocessor reads the same pixels).
        self.register_buffer("pixel_means", torch.tensor(pixel_means or [0.0] * channels).view(1, channels, 1, 1))
        self.register_buffer("pixel_scales", torch.tensor(pixel_scales or [1.0] * channels).view(1, channels, 1, 1))
        self.backbone = _backbone(self.resolution)
        # Batch norm over the pooled features before the linear layer: the frozen backbone's features are
        # not standardised, and a linear probe learns far faster on standardised ones (as MAE probes).
        self.head = nn.Sequential(nn.BatchNorm1d(FEATURES), nn.Dropout(dropout), nn.Linear(FEATURES, output_size))
        self.freeze()

    def top_blocks(self) -> list[nn.Module]:
        return [*self.backbone._blocks[-TOP_BLOCKS:], self.backbone._conv_head, self.backbone._bn1]

    def backbone_inputs(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images * self.pixel_scales + self.pixel_means  # back to [0, 1]
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        pixels = F.interpolate(pixels, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        return (pixels - LITE_MEAN) / LITE_SCALE

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: the backbone's pooled features (monitoring tests them for drift)."""
        return self.backbone.extract_features(self.backbone_inputs(images)).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def build(input_shape, output_size: int, architecture: dict[str, Any], pixel_statistics=None, **_) -> nn.Module:
    means, scales = pixel_statistics or (None, None)
    if int(input_shape[0]) not in (1, 3):
        raise ValueError(f"the pretrained backbone reads grey or RGB images, not {input_shape[0]} channels")
    return PretrainedImageNetwork(
        list(input_shape),
        output_size,
        int(architecture["resolution"]),
        architecture["fine_tuning"],
        float(architecture["dropout"]),
        means,
        scales,
    )


def available() -> bool:
    """Whether the extra that carries the backbone and its weights is installed."""
    import importlib.util

    from components.models.pretrained import installed

    return installed(WEIGHTS) and importlib.util.find_spec("efficientnet_lite_pytorch") is not None
