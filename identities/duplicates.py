"""'Is this photo already someone else's?', asked when photos are enrolled.

The same bytes (sha256), or the same face chip: a cosine of 0.98 or more between the base
face network's embeddings of two faces means the same photo (re-encoded, resized, saved
again), not merely the same person. It only warns: a photo of a photo, twins and a genuine
mistake are for a person to tell apart.
"""

import numpy as np

from .models import FaceImage

SAME_PHOTO_COSINE = 0.98


def photos_of_others(images):
    """[(image, the other person's FaceImage)] for each of images that another person
    already has: by sha256 first, else by embedding. Reads only."""
    found = []
    for image in images:
        other = _same_bytes(image) or _same_face(image)
        if other is not None:
            found.append((image, other))
    return found


def _same_bytes(image):
    others = FaceImage.objects.filter(sha256=image.sha256).exclude(identity=image.identity_id)
    return others.select_related("identity").first()


def _same_face(image):
    if not image.embedding or not image.embedding_model:
        return None
    others = (
        FaceImage.objects.filter(embedding_model=image.embedding_model, embedding__isnull=False)
        .exclude(identity=image.identity_id)
        .values_list("pk", "embedding")
    )
    rows = [(pk, bytes(vector)) for pk, vector in others if vector]
    if not rows:
        return None
    matrix = _unit(np.stack([np.frombuffer(v, dtype="<f4") for _, v in rows]))
    cosines = matrix @ _unit(np.frombuffer(bytes(image.embedding), dtype="<f4"))
    best = int(np.argmax(cosines))
    if cosines[best] < SAME_PHOTO_COSINE:
        return None
    return FaceImage.objects.select_related("identity").get(pk=rows[best][0])


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
