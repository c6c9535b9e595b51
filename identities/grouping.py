"""'Do you know this person?': unknown faces from the history, grouped by similarity.

Faces are compared by the active model's embeddings (cosine similarity after centring on
the pool's mean: the features are all positive, so uncentred cosines are all high), and
grouped by average-linkage agglomeration with a similarity threshold. numpy only; a few
hundred faces take milliseconds.
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
    """Re-embed, with the active model, the faces whose embedding came from another
    version (embeddings of different versions are not comparable), and store them.
    Faces whose region is gone are left out. Returns the faces with a current embedding;
    with no active model, the faces of the newest version that embedded any."""
    active = services.active_version()
    if active is None:
        return _newest_embeddings(faces)
    version_id = active.pk
    stale = [f for f in faces if f.embedding_version_id != version_id or not f.embedding]
    regions = {f.pk: open_region(f) for f in stale}
    to_embed = [f for f in stale if regions[f.pk] is not None]
    crops = [services.crop_for_box(*regions[f.pk]) for f in to_embed]
    try:
        _, embeddings = services.embed_faces(crops)
    except services.NoActiveModel:
        return _newest_embeddings(faces)  # its file is missing or damaged: use what we have
    for face, embedding in zip(to_embed, embeddings, strict=True):
        face.embedding, face.embedding_version_id = embedding, version_id
    PredictionFace.objects.bulk_update(to_embed, ["embedding", "embedding_version"])
    return [f for f in faces if f.embedding_version_id == version_id and f.embedding]


def _newest_embeddings(faces):
    versions = [f.embedding_version_id for f in faces if f.embedding_version_id and f.embedding]
    newest = max(versions, default=None)
    return [f for f in faces if newest and f.embedding_version_id == newest and f.embedding]


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
