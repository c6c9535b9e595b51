"""'Do you know this person?': unknown faces from the history, grouped by similarity.

Faces are compared by the base face network's embeddings, which are the same whatever
model version is active, so faces identified under different versions group together and
nothing is recomputed after a retrain. Cosine similarity is taken after centring on the
pool's mean (uncentred, any two faces score ~0.85-0.95), and faces are grouped by
average-linkage agglomeration with a similarity threshold. On lfw_many strangers (100
people, 530 photos) centred cosines of two photos of one person were above 0.51 in 95%
of pairs, of two people below 0.43 in 99%: hence FACEWEB_GROUP_SIMILARITY=0.5. numpy only;
a few hundred faces take milliseconds.
"""

import numpy as np
from django.conf import settings

from training import services

from .models import PredictionFace
from .recognitions import open_region

# The page shows the newest unknown faces first; older ones wait for the next round.
MAX_FACES = 400


def unknown_faces(limit=MAX_FACES):
    """Pending faces the model could not name and whose face is still stored, newest
    first. Reviewed faces (a stranger's included) are never offered again."""
    return list(
        PredictionFace.objects.filter(identity__isnull=True, review=PredictionFace.Review.PENDING)
        .exclude(face_crop="")
        .select_related("prediction")
        .order_by("-prediction__created_at", "-id")[:limit]
    )


def refresh_embeddings(faces):
    """Give each face the base face network's embedding, computing it (from the stored
    region) for faces that have none or one a model version made, and store it. Faces
    whose region is gone, or that cannot be embedded, are left out. Returns the faces with
    a base embedding. Safe to run twice: the second run computes nothing."""
    model = services.base_embedding_model()
    stale = [f for f in faces if f.embedding_model != model or not f.embedding]
    regions = {f.pk: open_region(f) for f in stale}
    to_embed = [f for f in stale if regions[f.pk] is not None]
    try:
        aligned = services.align_faces(regions[f.pk] for f in to_embed) if to_embed else []
    except services.FaceModelMissing:
        aligned = []  # reported at start-up (manage.py check); group what we have
        to_embed = []
    for face, face_aligned in zip(to_embed, aligned, strict=True):
        face.embedding, face.embedding_model = face_aligned.embedding, model
        face.embedding_version = None
    PredictionFace.objects.bulk_update(
        to_embed, ["embedding", "embedding_model", "embedding_version"]
    )
    return [f for f in faces if f.embedding_model == model and f.embedding]


def group_similar(vectors, threshold):
    """Average-linkage groups of vectors whose mean cosine similarity is at least
    threshold; returns lists of indices, largest group first. Pure."""
    if len(vectors) == 0:
        return []
    x = np.asarray(vectors, dtype=np.float32)
    if len(x) > 2:
        x = x - x.mean(axis=0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    groups = [[i] for i in range(len(x))]
    sizes = np.ones(len(x))
    while len(x) > 1:
        i, j = np.unravel_index(np.argmax(similarity), similarity.shape)
        if similarity[i, j] < threshold:
            break
        merged = (sizes[i] * similarity[i] + sizes[j] * similarity[j]) / (sizes[i] + sizes[j])
        similarity[i, :] = similarity[:, i] = merged
        similarity[j, :] = similarity[:, j] = -np.inf
        similarity[i, i] = -np.inf
        groups[i] += groups[j]
        groups[j] = []
        sizes[i] += sizes[j]
    return sorted((g for g in groups if g), key=len, reverse=True)


def unknown_groups(threshold=None):
    """Groups (lists of PredictionFace) of similar unknown faces, largest first; a face
    like no other is a group of one."""
    threshold = settings.FACEWEB_GROUP_SIMILARITY if threshold is None else threshold
    faces = refresh_embeddings(unknown_faces())
    vectors = [np.frombuffer(bytes(f.embedding), dtype="<f4") for f in faces]
    return [[faces[i] for i in group] for group in group_similar(vectors, threshold)]
