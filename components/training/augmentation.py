"""Label-preserving augmentation of training batches.

Images: a random rotation within +-``rotation_degrees``, a random shift of up to ``shift`` of the
side, and (only when asked: it changes the meaning of digits and text) a horizontal flip; one affine
warp per image with PyTorch's ``affine_grid`` / ``grid_sample``, on the batch as it enters the
network, so nothing is stored. Sequences (standardised): Gaussian jitter on every value, a random
scale per sequence and channel, and a random time warp (speed). Tables are never augmented: there is no transformation of a row
that is known to keep its label; rows that hold an image next to table columns have the image augmented.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:  # torch is imported where a batch is augmented: data preparation only chooses the policy
    import torch


class AugmentationPolicy(BaseModel):
    """What data preparation decided and training applies (recorded in the preparation manifest)."""

    kind: str = "none"  # none | image | sequence
    rotation_degrees: float = 0.0
    shift: float = 0.0
    horizontal_flip: bool = False
    jitter: float = 0.0  # sequences: standard deviation of the added noise, in standard deviations
    scaling: float = 0.0  # sequences: standard deviation of the per-channel scale around 1
    time_warp: float = 0.0  # sequences: largest change of speed (0.1: between 0.9x and 1.1x)
    image_shape: list[int] = []  # multimodal rows: the image (channels, height, width) that ends each row

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        if not self.active:
            return "no augmentation"
        if self.kind == "sequence":
            return (
                f"sequence augmentation: jitter {self.jitter:g}, scaling {self.scaling:g} (standard deviations), "
                f"time warp up to {self.time_warp:.0%}"
            )
        flip = ", horizontal flips" if self.horizontal_flip else ""
        part = " (of the image in each row; the table's columns are left as they are)" if self.image_shape else ""
        return f"image augmentation{part}: rotations up to {self.rotation_degrees:g} degrees, shifts up to {self.shift:.0%}{flip}"


def augment_images(batch: torch.Tensor, policy: AugmentationPolicy, generator: torch.Generator | None = None) -> torch.Tensor:
    """A randomly rotated, shifted (and flipped) copy of an NCHW batch."""
    import torch
    import torch.nn.functional as functional

    count = batch.shape[0]
    uniform = lambda: torch.rand(count, generator=generator) * 2 - 1  # noqa: E731
    angles = uniform() * math.radians(policy.rotation_degrees)
    shifts = torch.stack([uniform(), uniform()], dim=1) * policy.shift * 2  # grid coordinates span 2
    cos, sin = torch.cos(angles), torch.sin(angles)
    flips = torch.ones(count)
    if policy.horizontal_flip:
        flips = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * flips, -sin, shifts[:, 0]
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * flips, cos, shifts[:, 1]
    grid = functional.affine_grid(theta.to(batch.dtype).to(batch.device), list(batch.shape), align_corners=False)
    return functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_sequences(batch: torch.Tensor, policy: AugmentationPolicy, generator: torch.Generator | None = None) -> torch.Tensor:
    """Jittered, rescaled and time-warped copies of (samples, time, channels) standardised sequences.

    The time warp plays each sequence at a random speed within +-``time_warp`` around its middle
    (linear interpolation between steps; steps read from beyond the ends are the mean, 0).
    """
    import torch
    import torch.nn.functional as functional

    noise = torch.randn(batch.shape, generator=generator).to(batch) * policy.jitter
    scale = 1.0 + torch.randn((batch.shape[0], 1, batch.shape[2]), generator=generator).to(batch) * policy.scaling
    warped = batch
    if policy.time_warp > 0:
        count, length, _ = batch.shape
        speed = 1.0 + (torch.rand(count, generator=generator) * 2 - 1) * policy.time_warp
        theta = torch.zeros(count, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = speed, 1.0
        images = batch.transpose(1, 2).unsqueeze(2)  # (samples, channels, 1, time)
        grid = functional.affine_grid(theta.to(batch), list(images.shape), align_corners=False)
        warped = functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        warped = warped.squeeze(2).transpose(1, 2)
    return warped * scale + noise


def augment(batch: torch.Tensor, policy: AugmentationPolicy) -> torch.Tensor:
    import torch

    if policy.kind == "sequence":
        return augment_sequences(batch, policy)
    if policy.image_shape:
        width = batch.shape[1] - math.prod(policy.image_shape)
        images = augment_images(batch[:, width:].reshape(-1, *policy.image_shape), policy)
        return torch.cat([batch[:, :width], images.flatten(1)], dim=1)
    return augment_images(batch, policy)


def choose_augmentation(
    modality: str,
    setting: str,
    rotation_degrees: float,
    shift: float,
    horizontal_flip: bool,
    jitter: float = 0.03,
    scaling: float = 0.1,
    time_warp: float = 0.1,
    image_shape: tuple[int, ...] | list[int] = (),
) -> AugmentationPolicy:
    """``auto``: images (also those next to table columns: ``image_shape``) and sequences
    augmented, tables and text not; ``off``: nothing."""
    if setting == "off":
        return AugmentationPolicy()
    if modality == "sequence":
        return AugmentationPolicy(kind="sequence", jitter=jitter, scaling=scaling, time_warp=time_warp)
    if modality == "image" or (modality == "multimodal" and image_shape):
        return AugmentationPolicy(
            kind="image",
            rotation_degrees=rotation_degrees,
            shift=shift,
            horizontal_flip=horizontal_flip,
            image_shape=list(image_shape) if modality == "multimodal" else [],
        )
    return AugmentationPolicy()
