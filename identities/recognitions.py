"""Keeping identifications face by face, and forgetting them again (retention).

Each face of a Prediction gets a PredictionFace row: what the model said, the face with some
context around it (what a reviewer sees and what a confirmed face becomes), and the model's
embedding of it (to group unknown faces). A reviewer's decision is stored on the same row
(see identities.review).
"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from .models import Prediction, PredictionFace
from .uploads import save_jpeg

PHOTO_FOLDER = "predictions"
FACE_FOLDER = "prediction-faces"
# The stored face keeps this much of the photo around the face box: enough for a reviewer
# to recognise someone and for the training crop (box + 25% each side) to fit inside.
REGION_SCALE = 2.5
REGION_MAX_SIDE = 512


def face_region(image, box):
    """(region image, box inside it): a square around the face, clipped to the photo and
    scaled down to at most REGION_MAX_SIDE. Pure."""
    x, y, w, h = box
    side = max(w, h) * REGION_SCALE
    left = max(0, round(x + w / 2 - side / 2))
    top = max(0, round(y + h / 2 - side / 2))
    right = min(image.width, round(x + w / 2 + side / 2))
    bottom = min(image.height, round(y + h / 2 + side / 2))
    region = image.crop((left, top, right, bottom))
    inner = [x - left, y - top, w, h]
    scale = min(1.0, REGION_MAX_SIDE / max(region.size))
    if scale < 1.0:
        size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
        region = region.resize(size, Image.BILINEAR)
        inner = [round(v * scale) for v in inner]
    return region, inner


def record_faces(prediction, image, faces, keep_files=True):
    """Create one PredictionFace per face of an identify() result (faces as
    services.identify returns them with embeddings). With keep_files, each face's region
    is stored for review, and its embedding kept (without the face to show, a group of
    similar faces could not be reviewed). Returns the rows. Not idempotent: call once per
    prediction."""
    rows = []
    for index, face in enumerate(faces):
        crop_name, crop_box = "", None
        embedding = face.get("embedding") if keep_files else None
        if keep_files and face.get("box"):
            region, crop_box = face_region(image, face["box"])
            crop_name = save_jpeg(FACE_FOLDER, region)
        rows.append(
            PredictionFace(
                prediction=prediction,
                index=index,
                box=face["box"],
                identity_id=face.get("identity_id"),
                confidence=face["confidence"],
                score=face.get("score"),
                candidates=face.get("top_k", []),
                face_crop=crop_name,
                crop_box=crop_box,
                embedding=embedding,
                embedding_version_id=prediction.model_version_id if embedding else None,
            )
        )
    return PredictionFace.objects.bulk_create(rows)


def open_region(face):
    """(PIL image, box inside it) for a face, from its stored region or, for faces recorded
    before regions were kept, from the prediction's photo; None when neither is left."""
    if face.face_crop and default_storage.exists(face.face_crop.name):
        with face.face_crop.open("rb") as handle:
            image = Image.open(handle)
            image.load()
        return image.convert("RGB"), face.crop_box
    photo = face.prediction.photo
    if photo and default_storage.exists(photo.name):
        with photo.open("rb") as handle:
            image = Image.open(handle)
            image.load()
        return face_region(image.convert("RGB"), face.box)
    return None


def purge_expired(now=None):
    """Delete prediction photos older than FACEWEB_PREDICTION_RETENTION_DAYS, and the face
    regions and embeddings of their faces nobody reviewed; results stay. Returns
    {"photos": n, "faces": m}. Safe to run twice and concurrently (rows are cleared with
    conditional updates before their files are deleted)."""
    days = settings.FACEWEB_PREDICTION_RETENTION_DAYS
    if not days:
        return {"photos": 0, "faces": 0}
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = Prediction.objects.filter(created_at__lt=cutoff)
    photos = _clear_files(old.exclude(photo=""), "photo")
    faces = PredictionFace.objects.filter(
        prediction__created_at__lt=cutoff, review=PredictionFace.Review.PENDING
    )
    faces.filter(embedding__isnull=False).update(embedding=None, embedding_version=None)
    crops = _clear_files(faces.exclude(face_crop=""), "face_crop")
    return {"photos": photos, "faces": crops}


def _clear_files(queryset, field):
    names = []
    for pk, name in queryset.values_list("pk", field):
        if queryset.model.objects.filter(pk=pk, **{field: name}).update(**{field: ""}):
            names.append(name)
    transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return len(names)


def record_identification(image, result, user, started, strictness=""):
    """Store an identify() result (with embeddings) as a Prediction and its faces; returns
    the Prediction. The photo and face regions are kept unless
    FACEWEB_KEEP_PREDICTION_PHOTOS is off, when only the results are stored. strictness is
    the naming level the result was made with, kept to be shown with it."""
    keep = settings.FACEWEB_KEEP_PREDICTION_PHOTOS
    faces = [{k: v for k, v in face.items() if k != "embedding"} for face in result["faces"]]
    with transaction.atomic():
        prediction = Prediction.objects.create(
            photo=save_jpeg(PHOTO_FOLDER, image) if keep else "",
            width=image.width,
            height=image.height,
            model_version_id=result["model_version"],
            faces=faces,
            strictness=strictness,
            too_small=result.get("too_small", []),
            created_by=user,
        )
        record_faces(prediction, image, result["faces"], keep_files=keep)
        prediction.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        prediction.save(update_fields=["latency_ms"])
    return prediction
