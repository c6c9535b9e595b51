"""Image conversion and the train/eval transforms, side by side so the difference shows."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torchvision import transforms as T

from training.ml.config import AUGMENTATIONS, IMAGENET_MEAN, IMAGENET_STD

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def to_rgb(img: Image.Image) -> Image.Image:
    """Return an 8-bit RGB version of any PIL image the model may be given.

    Grayscale, palette, CMYK and 16/32-bit images are converted; transparent areas are
    composited on white (a transparent background must not turn black and become a
    feature). The input is not modified; an RGB input is returned as is.
    """
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img), img.mode), mode="L").convert("RGB")
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    # PIL's own convert("L") clips 16-bit values at 255, which turns most of a 16-bit
    # photo white; scale the range down instead.
    pixels = pixels.astype(np.float64)
    if mode == "F":
        peak = 1.0 if pixels.max(initial=0) <= 1.0 else 255.0
    elif mode in _SIXTEEN_BIT_MODES:
        peak = 65535.0
    else:
        # Mode "I" holds 8-bit, 16-bit (most 16-bit PNGs open as "I") or wider data
        # with nothing saying which; the largest value is the best hint there is.
        top = pixels.max(initial=0)
        peak = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.clip(np.rint(pixels * (255.0 / peak)), 0, 255).astype(np.uint8)


def train_transform(image_size: int, augmentation: str = "light"):
    """Transform for training images (PIL RGB in, normalised CHW float tensor out).

    "light" adds a random rotation of up to 10 degrees, a random crop of 85-100% of the
    area and a horizontal flip (a mirrored face is the same person); "none" equals
    eval_transform.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}")
    if augmentation == "none":
        return eval_transform(image_size)
    return T.Compose(
        [
            T.RandomRotation(10),
            T.RandomResizedCrop(image_size, scale=(0.85, 1.0)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Transform for validation and identification: resize to a square, tensor, normalise."""
    return T.Compose(
        [
            T.Resize((image_size, image_size)),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )
