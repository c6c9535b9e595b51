"""The identify path after upload validation: detect, align or crop, classify, threshold."""

from __future__ import annotations

from training.ml.faces import align_face, crop_face, detect_faces, rgb_pixels

# Faces beyond this many (largest first) are not identified, to bound a request's time.
MAX_FACES_PER_PHOTO = 32


def identify_faces(predictor, image, top_k=5, strictness="normal", threshold=None):
    """Find the faces in a PIL image and classify them all in one batched forward pass.

    Returns [(Face, result)] largest face first, where result is Predictor.identify's dict
    (top_k, score, threshold, accepted). Pure: reads nothing from disk.
    """
    faces = detect_faces(image)[:MAX_FACES_PER_PHOTO]
    if not faces:
        return []
    source = rgb_pixels(image) if predictor.crop == "chip" else image  # converted once
    crops = [face_input(predictor.crop, source, face.box) for face in faces]
    results = predictor.identify(crops, top_k=top_k, strictness=strictness, threshold=threshold)
    return list(zip(faces, results, strict=True))


def face_input(crop: str, image, box):
    """What a backbone takes of the face at box: the aligned chip (image may be its
    rgb_pixels()) or the margin crop (image a PIL image)."""
    if crop == "chip":
        return align_face(image, box)[1]
    return crop_face(image, box)
