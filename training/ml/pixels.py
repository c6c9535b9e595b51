"""Conversion of any image the app may be given to 8-bit RGB.

Pillow and numpy only, no torch: uploads convert with it in web processes that must not
load torch, and training and identification convert with the same function.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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
