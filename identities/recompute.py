"""Landmarks, aligned chips and base embeddings for photos stored before they existed, or
embedded by a network that is no longer the base one, and base embeddings for faces marked
"not anyone we know" before answers stored them (manage.py recompute_faces).

Each photo is committed on its own, so a run that is killed keeps what it did and the next
run goes on from there; a photo that is done is not selected again.
"""

from dataclasses import dataclass, field

from django.db import models
from PIL import Image

from training import services

from .grouping import refresh_embeddings
from .models import FaceImage, PredictionFace
from .uploads import ALIGNED_FIELDS, set_aligned_face


@dataclass
class Outcome:
    done: int = 0
    skipped: list = field(default_factory=list)  # [(FaceImage, reason)]


def photos_to_recompute(embedding_model, everything=False):
    """Usable photos (ids, oldest first) that lack a chip, landmarks or embedding, or whose
    embedding another network made; every usable photo when everything. Read-only."""
    photos = FaceImage.objects.filter(status=FaceImage.Status.OK)
    if not everything:
        missing = (
            models.Q(face_chip="")
            | models.Q(landmarks__isnull=True)
            | models.Q(embedding__isnull=True)
            | ~models.Q(embedding_model=embedding_model)
        )
        photos = photos.filter(missing)
    return list(photos.order_by("pk").values_list("pk", flat=True))


def strangers_to_embed(embedding_model):
    """Faces marked "not anyone we know" (ids, oldest first) without embedding_model's
    embedding: marked before the answer stored it, or embedded by another network. The next
    model refuses faces like these only once they have it. Read-only."""
    lacking = models.Q(embedding__isnull=True) | ~models.Q(embedding_model=embedding_model)
    rejected = PredictionFace.objects.filter(review=PredictionFace.Review.REJECTED)
    return list(rejected.filter(lacking).order_by("pk").values_list("pk", flat=True))


def embed_strangers(ids):
    """Give the faces with these ids the base network's embedding, from their stored
    regions; returns how many could not be embedded (their region and photo are gone)."""
    faces = list(PredictionFace.objects.filter(pk__in=ids).select_related("prediction"))
    return len(faces) - len(refresh_embeddings(faces))


def recompute_photos(ids):
    """Compute landmarks, chip and base embedding of the photos with these ids, from each
    stored original and its stored box; the embeddings in one batched pass. Returns an
    Outcome. A photo whose file is missing or unreadable is skipped with the reason; one
    deleted or given another face meanwhile is left as it is now. Safe to run twice."""
    outcome = Outcome()
    photos = []

    def regions():
        # One original in memory at a time: only the chips wait for the batched embedding.
        for photo in FaceImage.objects.filter(pk__in=ids).order_by("pk"):
            if not photo.box:
                outcome.skipped.append((photo, "no face box is stored"))
                continue
            try:
                image = _open(photo)
            except FileNotFoundError:
                outcome.skipped.append((photo, f"its file {photo.image.name} is missing"))
                continue
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                outcome.skipped.append(
                    (photo, f"its file {photo.image.name} is unreadable ({exc})")
                )
                continue
            photos.append(photo)
            yield image, photo.box

    for photo, aligned in zip(photos, services.align_faces(regions()), strict=True):
        outcome.done += _save(photo, aligned)
    return outcome


def _open(photo):
    with photo.image.open("rb") as handle, Image.open(handle) as image:
        image.load()
        return services.to_rgb(image)


def _save(photo, aligned):
    """Point the row at its new chip; True when it was still the photo it was read as."""
    old_chip = photo.face_chip.name
    set_aligned_face(photo, aligned)
    values = {name: getattr(photo, name) for name in ALIGNED_FIELDS}
    # Compare-and-set on the chip: a photo deleted, or given another face, since it was
    # read keeps what it has now, and the chip made here goes.
    saved = FaceImage.objects.filter(pk=photo.pk, face_chip=old_chip).update(**values)
    stale = old_chip if saved else photo.face_chip.name
    if stale:
        photo.face_chip.storage.delete(stale)
    return saved == 1
