"""The identify path after upload validation: detect, align or crop, classify, threshold."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.ml.faces import (
    MIN_FACE_SIZE,
    align_face,
    crop_face,
    detect_faces,
    in_reading_order,
    rgb_pixels,
)

# Faces beyond this many (the largest are kept) are not identified, to bound a request's
# time (~10 ms a face); a team photo of 40 is well within it.
MAX_FACES_PER_PHOTO = 100


@dataclass
class Identified:
    """identify_faces' answer: [(Face, result)] in reading order, and the faces found but
    too small to identify."""

    faces: list = field(default_factory=list)
    too_small: list = field(default_factory=list)


def identify_faces(
    predictor, image, top_k=5, strictness="normal", threshold=None, options=None
) -> Identified:
    """Find the faces in a PIL image and classify them all in one batched forward pass.

    options: detection.DetectOptions (None: the defaults). Faces are returned in reading
    order (rows top to bottom, each left to right) with Predictor.identify's dict (top_k,
    score, threshold, accepted); faces under MIN_FACE_SIZE px are listed as too small,
    not identified. Pure: reads nothing from disk.
    """
    found = detect_faces(image, options)
    usable = [face for face in found if face.size >= MIN_FACE_SIZE]
    answer = Identified(
        too_small=in_reading_order([face for face in found if face.size < MIN_FACE_SIZE])
    )
    faces = in_reading_order(usable[:MAX_FACES_PER_PHOTO])
    if not faces:
        return answer
    source = rgb_pixels(image) if predictor.crop == "chip" else image  # converted once
    crops = [face_input(predictor.crop, source, face.box) for face in faces]
    results = predictor.identify(crops, top_k=top_k, strictness=strictness, threshold=threshold)
    answer.faces = list(zip(faces, results, strict=True))
    return answer


def face_input(crop: str, image, box):
    """What a backbone takes of the face at box: the aligned chip (image may be its
    rgb_pixels()) or the margin crop (image a PIL image)."""
    if crop == "chip":
        return align_face(image, box)[1]
    return crop_face(image, box)
