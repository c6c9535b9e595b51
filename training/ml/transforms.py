"""Image conversion and the train/eval transforms, side by side so the difference shows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from training.ml.config import IMAGENET_MEAN, IMAGENET_STD
from training.ml.pixels import to_rgb

__all__ = ["to_rgb", "to_pixels", "train_transform", "eval_batch_transform", "eval_transform"]


def to_pixels(image: Image.Image, image_size: int) -> torch.Tensor:
    """A PIL image (any mode) as a uint8 CHW tensor of image_size x image_size pixels.

    The one resize every image goes through, in training and in identification alike, so
    that the model never sees a face resized differently from those it learnt on.
    """
    square = to_rgb(image).resize((image_size, image_size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1).contiguous()


# Augmentation presets. shift is a share of the image side; jitter scales brightness,
# contrast and saturation by 1 +- jitter; grayscale is the chance of dropping colour (some
# datasets and cameras are grayscale); erase is the chance of blanking a random patch, so
# the model cannot rely on one part of the face.
_AUGMENTATION_PRESETS = {
    "none": None,
    "light": dict(degrees=8, scale=(0.92, 1.08), shift=0.05, jitter=0.0, grayscale=0.0, erase=0),
    "strong": dict(
        degrees=12, scale=(0.85, 1.15), shift=0.08, jitter=0.3, grayscale=0.2, erase=0.25
    ),
}


def train_transform(augmentation: str = "strong", mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Transform for a training batch: uint8 NCHW pixels (and a torch.Generator) in,
    augmented and normalised float NCHW out.

    Works on whole batches of tensors rather than per PIL image, because per-image PIL
    transforms cost more CPU time than the network itself at small input sizes. "light"
    applies a random horizontal flip (a mirrored face is the same person), a small rotation,
    zoom and shift, all as one resampling; "strong" widens those and adds colour jitter,
    random grayscale and random erasing; "none" equals eval_batch_transform.
    """
    # "auto" is TrainConfig's placeholder, resolved to a preset before training.
    if augmentation not in _AUGMENTATION_PRESETS:
        raise ValueError(f"augmentation must be one of {', '.join(_AUGMENTATION_PRESETS)}")
    preset = _AUGMENTATION_PRESETS[augmentation]
    normalise = eval_batch_transform(mean, std)

    def transform(pixels: torch.Tensor, generator: torch.Generator | None = None):
        if preset is None:
            return normalise(pixels)
        images = pixels.float().div_(255)
        images = _random_flip_and_affine(
            images, generator, preset["degrees"], preset["scale"], preset["shift"]
        )
        if preset["jitter"] or preset["grayscale"]:
            images = _random_colour(images, generator, preset["jitter"], preset["grayscale"])
        if preset["erase"]:
            images = _random_erase(images, generator, preset["erase"])
        return _normalise(images, mean, std)

    return transform


def eval_batch_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Transform for a validation batch: uint8 NCHW pixels in, normalised float NCHW out."""
    return lambda pixels, generator=None: _normalise(pixels.float().div_(255), mean, std)


def eval_transform(image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Transform for one image to identify: PIL in, normalised CHW float tensor out.

    The same resize and normalisation as validation images get in training.
    """
    normalise = eval_batch_transform(mean, std)
    return lambda image: normalise(to_pixels(image, image_size)[None])[0]


def _uniform(n, low, high, generator):
    return low + (high - low) * torch.rand(n, generator=generator)


def _random_flip_and_affine(images, generator, degrees, scale, shift):
    n = images.shape[0]
    angle = torch.deg2rad(_uniform(n, -degrees, degrees, generator))
    zoom = _uniform(n, scale[0], scale[1], generator)
    # affine_grid works in [-1, 1] coordinates, where the side of the image is 2.
    offsets = _uniform((n, 2), -2 * shift, 2 * shift, generator)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, offsets[:, 0]], dim=1),
            torch.stack([sin * mirror, cos, offsets[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Reflection rather than black corners: black borders would be a feature of rotated
    # training images that identification photos never have.
    return F.grid_sample(images, grid, padding_mode="reflection", align_corners=False)


def _random_colour(images, generator, jitter, grayscale):
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    brightness = _uniform(n, 1 - jitter, 1 + jitter, generator).view(shape)
    contrast = _uniform(n, 1 - jitter, 1 + jitter, generator).view(shape)
    saturation = _uniform(n, 1 - jitter, 1 + jitter, generator).view(shape)
    saturation = torch.where(torch.rand(shape, generator=generator) < grayscale, 0.0, saturation)
    gray = (images * _LUMA.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    images = gray + saturation * (images - gray)
    mean_gray = gray.mean(dim=(2, 3), keepdim=True)
    images = mean_gray + contrast * (images - mean_gray)
    return (images * brightness).clamp_(0, 1)


def _random_erase(images, generator, chance):
    n, _, height, width = images.shape
    # One rectangle per image of 5-20% of the area, filled with the image's mean colour.
    area = _uniform(n, 0.05, 0.2, generator) * height * width
    aspect = torch.exp(_uniform(n, -1.0, 1.0, generator))
    h = (area * aspect).sqrt().clamp(max=height)
    w = (area / aspect).sqrt().clamp(max=width)
    top = _uniform(n, 0, 1, generator) * (height - h)
    left = _uniform(n, 0, 1, generator) * (width - w)
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    inside = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + h).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + w).view(n, 1, 1))
    )
    chosen = torch.rand(n, generator=generator) < chance
    mask = (inside & chosen.view(n, 1, 1)).unsqueeze(1)
    return torch.where(mask, images.mean(dim=(2, 3), keepdim=True), images)


_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _normalise(images, mean, std):
    mean = torch.tensor(mean, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std
