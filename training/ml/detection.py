"""Finding faces by their size, not by the photo's.

A detector finds faces from a fixed size up (HOG's and the CNN's windows are 80 px). So
the photo is scaled to where the smallest face wanted (`min_face`, in the original's
pixels) is what the detector needs — a 12 MP group photo is searched near full size, a
photo of one large face far smaller. HOG shares the levels of its pyramid between cores
(_hog_by_levels); the CNN cuts large photos into overlapping strips to bound its memory. A
pixel budget bounds the work: a photo that would need more is searched at a coarser scale
(detection_scale() says from which size faces may be missed).

Two detectors behind one interface: dlib's HOG (`dlib.get_frontal_face_detector`, fast,
frontal faces) and dlib's CNN (MMOD, `mmod.py` in PyTorch: finds turned faces, ~5x HOG's
time on a CPU), alone or with the CNN looking again where HOG found nothing.
bench/detection.py measures them; the README has the figures.
"""

from __future__ import annotations

import math
import os
import queue
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# "hog+cnn": HOG, and the CNN on photos where HOG found no face (turned faces, a face
# filling the photo): what HOG misses in portraits, at no cost on the photos HOG reads.
DETECTORS = ("hog", "cnn", "hog+cnn")
# The smallest face (dlib's box) the detectors find at a scale of 1 (bench/detection.py).
SMALLEST_FOUND = 64
# The CNN looks again only at photos up to this size (at the detection scale): ~1 s.
CNN_FALLBACK_MEGAPIXELS = 4.0
# dlib's HOG detector searches a pyramid of the photo, each level 5/6 the size of the one
# before (pyramid_down<6>), so level k costs (25/36)^k of the first and the whole pyramid
# 36/11 of it. Threads share the levels out (see _hog_by_levels).
LEVEL_SCALE = 5 / 6
MOST_LEVEL_GROUPS = 4  # the first level alone is 11/36 of the work: more threads gain nothing
# The levels from this one up (faces from ~115 px at the detection scale) are searched in
# grey: a third less work than colour, whose gradient is the strongest of three channels'.
# Grey costs small faces recall, found in the first levels, which stay in colour.
COLOUR_LEVELS = 2
# A photo for the CNN is cut into vertical strips (to bound its memory: its tiled pyramid of
# a 2000 px wide strip takes ~1 GB) that overlap by more than the largest face searched in
# them; faces from 3/4 of the overlap up are found by a coarser whole-photo pass.
TILE_OVERLAP = 400
CNN_STRIP = 2000
# A face filling a photo touches its edges, where no window can sit: photos (at the
# detection scale) up to RETRY_UP_TO px where nothing was found are searched again with a
# border, and upsampled when under UPSAMPLE_BELOW px (HOG misses faces under ~64 px).
PAD_FRACTION = 0.3
RETRY_UP_TO = 1024
UPSAMPLE_BELOW = 500


@dataclass(frozen=True)
class DetectOptions:
    """How to search a photo. min_face: the smallest face to find, in the original's
    pixels; max_megapixels: the most pixels searched (at the detection scale) per photo."""

    detector: str = "hog+cnn"
    min_face: int = 64
    max_megapixels: float = 24.0
    threads: int = 0  # 0: every core

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}")
        if self.min_face < 8 or self.max_megapixels <= 0:
            raise ValueError("min_face must be at least 8 px and max_megapixels positive")


@dataclass
class Search:
    """What a search did: faces as (box, score) in the original's pixels, and the scale
    used (detection_scale() gives the smallest face it finds)."""

    faces: list = field(default_factory=list)
    scale: float = 1.0


def detection_scale(size, options: DetectOptions) -> tuple[float, int]:
    """(scale, smallest face found in original pixels) for a photo of size (w, h)."""
    scale = SMALLEST_FOUND / options.min_face
    budget = math.sqrt(options.max_megapixels * 1e6 / (size[0] * size[1]))
    scale = min(scale, budget)
    return scale, math.ceil(SMALLEST_FOUND / scale)


def search(image: Image.Image, options: DetectOptions = DetectOptions()) -> Search:
    """Find the faces in a PIL image; see the module's docstring. Pure."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale, _ = detection_scale(rgb.size, options)
    scaled = _resized(rgb, scale)
    first = "cnn" if options.detector == "cnn" else "hog"
    found = _search_once(scaled, first, options)
    pixels = scaled.width * scaled.height
    if not found and options.detector == "hog+cnn" and pixels <= CNN_FALLBACK_MEGAPIXELS * 1e6:
        found = _search_once(scaled, "cnn", options)
    faces = []
    for left, top, right, bottom, score in found:
        box = _to_original((left, top, right, bottom), scale, rgb.size)
        if box[2] > 0 and box[3] > 0:
            faces.append((box, score))
    return Search(faces=faces, scale=scale)


def _resized(rgb: Image.Image, scale: float) -> Image.Image:
    if abs(scale - 1) < 1e-3:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.BILINEAR)


def _search_once(scaled: Image.Image, detector: str, options) -> list:
    found = _search_tiled(scaled, detector, options)
    if not found and max(scaled.size) <= RETRY_UP_TO:
        found = _search_padded(scaled, detector)
    return found


def _search_tiled(scaled: Image.Image, detector: str, options) -> list:
    """Boxes (left, top, right, bottom, score) in scaled's pixels, inclusive, overlaps
    removed. HOG: the pyramid's levels shared between threads. The CNN (whose convolutions
    already use every core): strips, and a coarser whole-photo pass for faces larger than
    the strips' overlap."""
    if detector == "hog":
        return _filter_overlaps(_hog_by_levels(scaled, _threads(options)))
    tiles = _tiles(scaled.size, math.ceil(scaled.width / CNN_STRIP))
    if len(tiles) == 1:
        return _filter_overlaps(_run(detector, np.asarray(scaled)))
    # A face narrower than the overlap lies whole in one strip; the wider ones (from 3/4
    # of it, leaving the detector some context) are found here on a far smaller photo.
    found = _coarse_pass(detector, scaled, SMALLEST_FOUND / (0.75 * TILE_OVERLAP))
    for tile in tiles:
        found += _shifted(detector, scaled, *tile)
    return _filter_overlaps(found)


def _hog_by_levels(scaled: Image.Image, threads: int) -> list:
    """HOG's boxes on scaled, its pyramid's levels shared between threads (HOG runs on one
    core and releases the GIL): each searches the photo scaled to its first level, with a
    detector that stops after its last. Two threads: levels 0-1, and 2 up on the photo
    scaled by (5/6)^2, about half the work each. Levels from COLOUR_LEVELS up are searched
    in grey (see there). Any number of threads gives the same faces, to a pixel or two
    (bench/detection.py, tests/ml/test_detection.py)."""
    groups = [
        (first, levels)
        for first, levels in _colour_then_grey(_level_groups(min(threads, MOST_LEVEL_GROUPS)))
        if min(scaled.size) * LEVEL_SCALE**first >= SMALLEST_FOUND
    ]
    if not groups:  # smaller than the window
        return []
    photo = np.asarray(scaled)  # loads it: a lazily loaded image is not thread-safe

    def search_levels(group):
        first, levels = group
        # Downsampled as dlib's own pyramid does, so each level is the same image. The
        # grey copy is made by the thread that searches it, off the first group's path.
        pixels = photo if first < COLOUR_LEVELS else np.asarray(scaled.convert("L"))
        for _ in range(first):
            pixels = _pyramid_down(pixels)
        return [_level_up(box, first) for box in _run("hog", pixels, levels=levels)]

    if len(groups) == 1 or threads == 1:
        return [box for group in groups for box in search_levels(group)]
    # This thread searches the first levels (the most work) while the others start.
    with ThreadPoolExecutor(min(threads, len(groups)) - 1) as pool:
        rest = pool.map(search_levels, groups[1:])
        return search_levels(groups[0]) + [box for part in rest for box in part]


def _colour_then_grey(groups: list) -> list:
    """groups, the one holding level COLOUR_LEVELS cut in two there (colour below it)."""
    cut = []
    for first, levels in groups:
        last = math.inf if levels is None else first + levels
        if first < COLOUR_LEVELS < last:
            rest = None if levels is None else last - COLOUR_LEVELS
            cut += [(first, COLOUR_LEVELS - first), (COLOUR_LEVELS, rest)]
        else:
            cut.append((first, levels))
    return cut


def _pyramid_down(pixels):
    import dlib

    return dlib.pyramid_down(6)(pixels)


def _level_up(box, levels):
    """A box found `levels` pyramid levels down, in the photo's pixels (as dlib maps it)."""
    if levels == 0:
        return box
    import dlib

    left, top, right, bottom, score = box
    up = dlib.pyramid_down(6).rect_up(dlib.drectangle(left, top, right, bottom), levels)
    return (up.left(), up.top(), up.right(), up.bottom(), score)


def _level_groups(threads: int) -> list:
    """[(first level, number of levels or None for all the rest)]: consecutive pyramid
    levels in at most `threads` groups of about equal cost."""
    cost = LEVEL_SCALE**2
    target = 1 / (1 - cost) / threads
    groups, first, level, total = [], 0, 0, 0.0
    while len(groups) < threads - 1:
        here = cost**level
        if total and abs(total + here - target) >= abs(total - target):
            groups.append((first, level - first))
            first, total = level, 0.0
            continue
        total += here
        level += 1
    return [*groups, (first, None)]


def _shifted(detector, image, left, top, width, height):
    strip = np.asarray(image.crop((left, top, left + width, top + height)))
    return _moved(_run(detector, strip), left, top)


def _coarse_pass(detector, scaled, factor):
    return _scaled_up(_run(detector, np.asarray(_resized(scaled, factor))), factor)


def _moved(boxes, dx, dy) -> list:
    """Inclusive boxes (left, top, right, bottom, score) moved by (dx, dy)."""
    return [(a + dx, b + dy, c + dx, d + dy, s) for a, b, c, d, s in boxes]


def _scaled_up(boxes, factor) -> list:
    """Inclusive boxes found on an image resized by factor, in the image's own pixels."""
    return [
        (a / factor, b / factor, (c + 1) / factor - 1, (d + 1) / factor - 1, s)
        for a, b, c, d, s in boxes
    ]


def _search_padded(scaled: Image.Image, detector: str) -> list:
    pad = round(PAD_FRACTION * max(scaled.size))
    padded = np.asarray(ImageOps.expand(scaled, border=pad, fill=(0, 0, 0)))
    upsample = 2 if max(scaled.size) < UPSAMPLE_BELOW else 1
    return _moved(_run(detector, padded, upsample), -pad, -pad)


def _tiles(size, count: int) -> list:
    """(left, top, width, height) of count vertical strips overlapping by TILE_OVERLAP
    (one when the photo is too narrow to be worth cutting)."""
    width, height = size
    count = min(count, max(1, width // (2 * TILE_OVERLAP)))
    if count == 1:
        return [(0, 0, width, height)]
    strip = math.ceil((width + (count - 1) * TILE_OVERLAP) / count)
    tiles = [(i * (strip - TILE_OVERLAP), 0, strip, height) for i in range(count - 1)]
    last = tiles[-1][0] + strip - TILE_OVERLAP
    return [*tiles, (last, 0, width - last, height)]


def _threads(options) -> int:
    return options.threads or os.cpu_count() or 1


def _run(detector: str, pixels: np.ndarray, upsample: int = 1, levels=None) -> list:
    """One detector over an RGB array: [(left, top, right, bottom, score)] inclusive.
    levels: HOG searches only the first this many levels of its pyramid (None: all)."""
    if detector == "hog":
        with _hog(levels) as hog:
            rects, scores, _ = hog.run(pixels, upsample - 1 if upsample > 1 else 0, 0.0)
        return [
            (r.left(), r.top(), r.right(), r.bottom(), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
    if upsample > 1:
        big = Image.fromarray(pixels).resize(
            (pixels.shape[1] * upsample, pixels.shape[0] * upsample), Image.BILINEAR
        )
        return _scaled_up(_run(detector, np.asarray(big)), upsample)
    found = _cnn().detect(pixels, dtype=_cnn_dtype())
    return [(d.left, d.top, d.right, d.bottom, d.score) for d in found]


def _filter_overlaps(boxes: list) -> list:
    """Best first; a box mostly covering or covered by a better one is the same face seen
    twice (two tiles, or the tiles and the coarse pass)."""
    kept = []
    for box in sorted(boxes, key=lambda b: b[4], reverse=True):
        if not any(_same_face(box, k) for k in kept):
            kept.append(box)
    return kept


def _same_face(a, b) -> bool:
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return False
    inner = width * height
    smaller = min((a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return inner / smaller > 0.5


def _to_original(rect, scale, size):
    left = max(0.0, rect[0] / scale)
    top = max(0.0, rect[1] / scale)
    right = min(float(size[0]), (rect[2] + 1) / scale)
    bottom = min(float(size[1]), (rect[3] + 1) / scale)
    return (round(left), round(top), round(right - left), round(bottom - top))


# dlib's HOG detector keeps scratch buffers: two threads running the same one crash the
# process. Each run takes one from a pool (making one takes ~0.3 s) and puts it back; one
# pool per number of pyramid levels searched.
_hog_pools: dict = {}
_hog_pools_lock = threading.Lock()


@contextmanager
def _hog(levels=None):
    with _hog_pools_lock:
        pool = _hog_pools.setdefault(levels, queue.SimpleQueue())
    try:
        detector = pool.get_nowait()
    except queue.Empty:
        detector = _new_hog(levels)
    try:
        yield detector
    finally:
        pool.put(detector)


# In dlib's serialised frontal face detector: the 80x80 window, the scanner's
# max_pyramid_levels (1000, as dlib writes an unsigned long) and the smallest level (64x64).
_LEVELS_FIELD = "0150 0150 {} 0140 0140"


def _new_hog(levels=None):
    """dlib's frontal face detector; with levels, one that searches only the first levels of
    its pyramid: the scanner's max_pyramid_levels, which dlib's Python API does not set,
    changed in the detector's saved form."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    if levels is None:
        return detector
    if not 1 <= levels <= 255:
        raise ValueError(f"levels must be 1-255, got {levels}")
    with tempfile.TemporaryDirectory(prefix="faceweb-hog-") as folder:
        path = Path(folder) / "frontal.svm"
        detector.save(str(path))
        saved = path.read_bytes()
        default = bytes.fromhex(_LEVELS_FIELD.format("02e803"))
        if saved.count(default) != 1:
            raise RuntimeError("this dlib saves its face detector in an unknown form")
        limited = bytes.fromhex(_LEVELS_FIELD.format(f"01{levels:02x}"))
        path.write_bytes(saved.replace(default, limited))
        return dlib.fhog_object_detector(str(path))


def _cnn_dtype():
    # bf16 where the hardware runs it natively: ~3x faster on such a CPU; all faces still
    # found, but a neighbouring window may win (../shared/notes/dlib-mmod-detector.md).
    import torch

    from training.ml.train import autocast_dtype

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return autocast_dtype("auto", device)


def _cnn():
    from training.ml import mmod
    from training.ml.dlib_file import DlibFileError
    from training.ml.model_files import MODELS_PACKAGE, FaceModelMissing, face_model_path

    path = face_model_path(mmod.MMOD_MODEL)
    try:
        return mmod.get_detector(path)
    except DlibFileError as exc:
        raise FaceModelMissing(
            f"The face detector file cannot be read ({exc}): reinstall the {MODELS_PACKAGE} "
            f"package (pip install --force-reinstall {MODELS_PACKAGE})."
        ) from exc
