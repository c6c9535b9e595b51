"""A person's right to be forgotten, and to see what is stored about them.

forget_identity deletes a person with everything that names them; export_identity streams
a zip of everything stored about them.
"""

import csv
import io
import json
import zipfile

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q

from accounts import audit
from accounts.models import AuditEvent
from training import services

from .models import Prediction, PredictionFace


def predictions_naming(identity):
    """Identifications where the model or a reviewer named this person."""
    named = Q(face_rows__identity=identity) | Q(face_rows__reviewed_identity=identity)
    return Prediction.objects.filter(named).distinct()


def forget_identity(identity, user):
    """Delete a person, their photos and crops, and every identification that names them
    (the photo shows them); remove them from other identifications' candidate lists; note
    on each model version trained on them that their face is still in its weights.

    Returns {"photos", "predictions", "versions": [ModelVersion]}. Audited. Files go once
    the deletion is committed (see identities.signals).
    """
    identity_id = identity.pk
    with transaction.atomic():
        predictions = Prediction.objects.filter(
            pk__in=list(predictions_naming(identity).values_list("pk", flat=True))
        )
        summary = {"photos": identity.images.count(), "predictions": predictions.count()}
        audit.record(user, "identity.delete", identity, **summary)
        for prediction in predictions:
            prediction.delete()  # one by one, so the signals delete each photo
        _drop_from_candidates(identity_id)
        identity.delete()
    summary["versions"] = services.note_identity_deleted(identity_id)
    # A job killed mid-run left its export of everyone's face crops (this person's too).
    services.remove_leftover_work_dirs()
    return summary


def _drop_from_candidates(identity_id):
    """Remove a person from the top-k lists of identifications that did not name them."""

    def without(candidates):
        return [c for c in candidates if c.get("identity_id") != identity_id]

    for face in PredictionFace.objects.exclude(candidates=[]).iterator():
        if without(face.candidates) != face.candidates:
            PredictionFace.objects.filter(pk=face.pk).update(candidates=without(face.candidates))
    for prediction in Prediction.objects.exclude(faces=[]).iterator():
        faces = [f | {"top_k": without(f.get("top_k", []))} for f in prediction.faces]
        if faces != prediction.faces:
            Prediction.objects.filter(pk=prediction.pk).update(faces=faces)


# --- export ---------------------------------------------------------------------------------


class _Chunks(io.RawIOBase):
    """A write-only stream that hands over what was written (zipfile writes to it)."""

    def __init__(self):
        self.parts = []

    def writable(self):
        return True

    def write(self, data):
        self.parts.append(bytes(data))
        return len(data)

    def take(self):
        data, self.parts = b"".join(self.parts), []
        return data


def export_identity(identity):
    """Yield the bytes of a zip of everything stored about a person: person.json (details,
    photos with provenance, landmarks and face embeddings, model versions trained on them,
    audit trail), recognitions.csv (where they were recognised), photos/, crops/, chips/
    (the aligned faces the face network sees), and recognised/ (their face as it was
    identified). Streamed: one stored file in memory at a time. Read-only."""
    out = _Chunks()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        images = list(identity.images.select_related("uploaded_by", "source_face"))
        faces = list(_recognitions(identity))
        archive.writestr("person.json", json.dumps(_details(identity, images), indent=2))
        archive.writestr("recognitions.csv", _recognitions_csv(faces))
        yield out.take()
        files = [(f"photos/{i.pk}.jpg", i.image.name) for i in images]
        files += [(f"crops/{i.pk}.jpg", i.face_crop.name) for i in images if i.face_crop]
        files += [(f"chips/{i.pk}.jpg", i.face_chip.name) for i in images if i.face_chip]
        files += [(_recognised_name(f), f.face_crop.name) for f in faces if _face_file_shown(f)]
        for member, name in files:
            if not default_storage.exists(name):
                continue
            with default_storage.open(name, "rb") as source, archive.open(member, "w") as target:
                for chunk in iter(lambda: source.read(1 << 16), b""):  # noqa: B023
                    target.write(chunk)
                    yield out.take()
    yield out.take()


def _recognitions(identity):
    """Faces a reviewer said are this person, and faces the model named them that nobody
    has reviewed yet. A face the model named them but a reviewer corrected away (or called
    a stranger) is someone else's and stays out."""
    confirmed = Q(reviewed_identity=identity)
    unconfirmed = Q(identity=identity, review=PredictionFace.Review.PENDING)
    return (
        PredictionFace.objects.filter(confirmed | unconfirmed)
        .select_related("prediction__created_by", "reviewed_by", "identity", "reviewed_identity")
        .order_by("prediction__created_at", "index")
    )


def _face_file_shown(face):
    # Only a face a reviewer said is this person: an unreviewed one may be anyone's face, so
    # the export holds its metadata alone.
    return bool(face.face_crop) and face.review != PredictionFace.Review.PENDING


def _recognised_name(face):
    return f"recognised/{face.prediction_id}-{face.index + 1}.jpg"


def _details(identity, images):
    return {
        "name": identity.name,
        "slug": identity.slug,
        "notes": identity.notes,
        "is_active": identity.is_active,
        "created_at": identity.created_at.isoformat(),
        "photos": [_photo(image) for image in images],
        "model_versions_trained_on_them": [
            {"version": v.pk, "created_at": v.created_at.isoformat(), "is_active": v.is_active}
            for v in services.versions_trained_on(identity.pk)
        ],
        "audit_trail": [
            {"at": e.created_at.isoformat(), "by": e.actor_name, "action": e.action}
            for e in AuditEvent.objects.filter(target_type="identity", target_id=str(identity.pk))
        ],
    }


def _photo(image):
    return {
        "file": f"photos/{image.pk}.jpg",
        "face_crop": f"crops/{image.pk}.jpg" if image.face_crop else None,
        "face_chip": f"chips/{image.pk}.jpg" if image.face_chip else None,
        "status": image.status,
        "source": image.source,
        "from_identification": image.source_face.prediction_id if image.source_face else None,
        "added_by": image.uploaded_by.get_username() if image.uploaded_by else None,
        "added_at": image.uploaded_at.isoformat(),
        "original_name": image.original_name,
        "box": image.box,
        "landmarks": image.landmarks,
        "face_embedding": _embedding(image),
    }


def _embedding(image):
    """The base face network's embedding of the face: biometric data, so it is shown too."""
    if not image.embedding:
        return None
    import numpy as np

    values = np.frombuffer(bytes(image.embedding), dtype="<f4")
    return {"model": image.embedding_model, "values": [round(float(v), 6) for v in values]}


RECOGNITION_COLUMNS = [
    "identification",
    "face",
    "at",
    "asked_by",
    "model_version",
    "model_said",
    "confidence",
    "review",
    "reviewed_by",
    "reviewed_at",
    "face_file",
]


def _recognitions_csv(faces):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RECOGNITION_COLUMNS)
    for face in faces:
        prediction = face.prediction
        writer.writerow(
            spreadsheet_safe(cell)
            for cell in [
                prediction.pk,
                face.index + 1,
                prediction.created_at.isoformat(),
                prediction.created_by.get_username() if prediction.created_by else "",
                prediction.model_version_id or "",
                face.identity.name if face.identity else "unknown",
                face.confidence,
                face.review,
                face.reviewed_by.get_username() if face.reviewed_by else "",
                face.reviewed_at.isoformat() if face.reviewed_at else "",
                _recognised_name(face) if _face_file_shown(face) else "",
            ]
        )
    return buffer.getvalue()


# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """value as a CSV cell that a spreadsheet shows as text (OWASP's CSV injection advice:
    a leading quote)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
