"""Face detection and cropping: dlib's HOG detector behind a small interface.

Why dlib's HOG detector (the `dlib-bin` wheel): its model is compiled into the library, so
nothing is downloaded at run time; the wheel has no dependencies to fight the resolver; it
found 99-100% of faces on LFW and ORL crops with no false boxes, in ~5 ms for a 250 px
image on one core. It gives no landmarks, so crops are centred on the box, not aligned on
the eyes.

The same crop_face() is used for training images and for faces being identified.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# Photos are scaled down to this longest side for detection; boxes are mapped back.
DETECT_MAX_SIDE = 1024
# Small photos where nothing was found are searched again, upsampled: HOG misses faces
# under ~80 px.
UPSAMPLE_BELOW = 500
# Tight crops (a face filling the photo) are padded by this share of their longest side.
PAD_FRACTION = 0.3
# Faces whose box is narrower than this, in original pixels, are too small to learn from.
MIN_FACE_SIZE = 32
# A crop extends each side of the detector's box by this share of the box (hair, chin, ears).
CROP_MARGIN = 0.25
CROP_SIZE = 224  # stored crops; the network's input size may be smaller

_detector = None
_detector_lock = threading.Lock()


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


def _get_detector():
    global _detector
    with _detector_lock:
        if _detector is None:
            import dlib

            _detector = dlib.get_frontal_face_detector()
        return _detector


def detect_faces(image: Image.Image, min_score: float = 0.0) -> list[Face]:
    """Find the faces in a PIL image; largest first. Pure function, no side effects.

    Large photos are scaled down before detection. When the quick pass finds nothing, the
    photo is searched again padded (a face filling the whole picture touches its edges,
    where the detector's window cannot sit) and, when small, upsampled.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, DETECT_MAX_SIDE / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.BILINEAR)
    detector = _get_detector()
    pad = 0
    rects, scores, _ = detector.run(np.asarray(rgb), 0, min_score)
    if not rects:
        pad = round(PAD_FRACTION * max(rgb.size))
        padded = np.asarray(ImageOps.expand(rgb, border=pad, fill=(0, 0, 0)))
        # Upsampling is four times slower, so only for small photos.
        upsample = 1 if max(rgb.size) < UPSAMPLE_BELOW else 0
        rects, scores, _ = detector.run(padded, upsample, min_score)
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        box = _to_original(rect, pad, scale, image.size)
        if box[2] > 0 and box[3] > 0:
            faces.append(Face(box=box, score=round(float(score), 3)))
    return sorted(faces, key=lambda face: face.area, reverse=True)


def _to_original(rect, pad, scale, size):
    left = max(0.0, (rect.left() - pad) / scale)
    top = max(0.0, (rect.top() - pad) / scale)
    right = min(float(size[0]), (rect.right() + 1 - pad) / scale)
    bottom = min(float(size[1]), (rect.bottom() + 1 - pad) / scale)
    return (round(left), round(top), round(right - left), round(bottom - top))


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
