"""Image augmentation keeps the batch's shape and content roughly in place; tables are never augmented."""

import torch

from components.training.augmentation import AugmentationPolicy, augment_images, choose_augmentation


def test_policy_follows_the_modality_and_the_setting():
    assert not choose_augmentation("tabular", "auto", 10, 0.1, False).active
    assert not choose_augmentation("image", "off", 10, 0.1, False).active
    policy = choose_augmentation("image", "auto", 10, 0.1, False)
    assert policy.active and "rotations up to 10 degrees" in policy.describe()


def test_augmented_images_move_a_little_and_keep_their_shape():
    generator = torch.Generator().manual_seed(0)
    batch = torch.zeros(16, 1, 16, 16)
    batch[:, :, 6:10, 6:10] = 1.0  # a bright square in the middle
    moved = augment_images(batch, AugmentationPolicy(kind="image", rotation_degrees=10, shift=0.1), generator)
    assert moved.shape == batch.shape
    assert not torch.allclose(moved, batch)
    centre = moved[:, :, 4:12, 4:12].sum(dim=(1, 2, 3)) / moved.sum(dim=(1, 2, 3))
    assert (centre > 0.9).all()  # shifted by at most 10% of the side: the square stays near the middle
    still = augment_images(batch, AugmentationPolicy(kind="image"), generator)
    assert torch.allclose(still, batch, atol=1e-6)  # no rotation, no shift: the identity
    mirrored = augment_images(
        batch[:, :, :, :] * torch.arange(16.0), AugmentationPolicy(kind="image", horizontal_flip=True), generator
    )
    assert mirrored.shape == batch.shape


def test_sequence_augmentation_warps_time_and_keeps_the_shape():
    from components.training.augmentation import augment_sequences

    generator = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-1, 1, 20).view(1, 20, 1).repeat(8, 1, 2)
    policy = choose_augmentation("sequence", "auto", 10, 0.1, False, jitter=0.0, scaling=0.0, time_warp=0.2)
    assert "time warp up to 20%" in policy.describe()
    warped = augment_sequences(ramp, policy, generator)
    assert warped.shape == ramp.shape and not torch.allclose(warped, ramp)
    middle = warped[:, 8:12]
    assert torch.allclose(middle, ramp[:, 8:12], atol=0.1)  # a change of speed around the middle moves the ends most
    assert torch.allclose(augment_sequences(ramp, choose_augmentation("sequence", "auto", 0, 0, False, 0.0, 0.0, 0.0)), ramp)
