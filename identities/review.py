"""Reviewing identified faces: the one code path behind the Review page, the result page,
"Do you know this person?", the API and bench/correction_loop.py.

A face is reviewed once. "correct" (the model's answer is right) and "this is <someone>"
turn the face into a training photo of that person, with its provenance; "not anyone we
know" remembers the face as a stranger's: nothing automatic ever offers it again, and the
next model learns to refuse a face like it (its base embedding is stored now, see
training.dataset.stranger_faces).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import audit

from .grouping import refresh_embeddings
from .models import FaceImage, Identity, PredictionFace
from .people import identity_called
from .recognitions import open_region
from .uploads import UploadError, add_reviewed_face

CONFIRM, NAME, REJECT = "confirm", "name", "reject"
DECISIONS = (CONFIRM, NAME, REJECT)


class ReviewError(Exception):
    """A review that cannot be made; nothing was changed. The message is for the user."""


class AlreadyReviewed(ReviewError):
    """The face has its answer already (given by someone else, or a second click)."""


def review_face(face, decision, user, identity=None, new_name=""):
    """Record a reviewer's decision on a face; returns (face, FaceImage or None).

    decision is CONFIRM (the model named the right person), NAME (it is identity, or a new
    person called new_name; an existing name is reused) or REJECT (nobody we know). A
    named face is added to that person's photos (when its region is still stored) and so
    to the next training run. Raises ReviewError, changing nothing, for a face already
    reviewed or a decision that does not fit. Audited. Running it twice is refused.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"Unknown decision {decision!r}: use {', '.join(DECISIONS)}.")
    with transaction.atomic():
        target = _target(face, decision, identity, new_name, user)
        state = _state(face, decision, target)
        claimed = PredictionFace.objects.filter(
            pk=face.pk, review=PredictionFace.Review.PENDING
        ).update(
            review=state, reviewed_identity=target, reviewed_by=user, reviewed_at=timezone.now()
        )
        if not claimed:
            raise AlreadyReviewed(f"{face} has already been reviewed.")
        face.refresh_from_db()
        if target is None:
            refresh_embeddings([face])  # the stranger a retrained model will refuse
        image = _learn(face, target, user) if target is not None else None
        audit.record(
            user,
            "face.review",
            face,
            decision=state,
            identity=target.pk if target else None,
            photo=image.pk if image else None,
        )
    return face, image


def _target(face, decision, identity, new_name, user):
    if decision == REJECT:
        return None
    if decision == CONFIRM:
        if face.identity is None:
            raise ReviewError("The model named nobody here: say who it is instead.")
        return face.identity
    if identity is not None:
        return identity
    return identity_named(new_name, user)


def identity_named(name, user):
    """The person called name (any case), made now if there is none. Raises ReviewError
    for an empty name."""
    if not " ".join((name or "").split()):
        raise ReviewError("Pick a person or type the name of a new one.")
    try:
        identity, created = identity_called(name, user)
    except ValidationError as exc:
        raise ReviewError(" ".join(exc.messages)) from None
    if created:
        audit.record(user, "identity.create", identity, source="review")
    return identity


def _state(face, decision, target):
    if target is None:
        return PredictionFace.Review.REJECTED
    if face.identity_id == target.pk:
        return PredictionFace.Review.CONFIRMED
    return PredictionFace.Review.CORRECTED


def _learn(face, identity, user):
    region = open_region(face)
    if region is None:
        return None  # its photo was not kept (retention or the keep-no-photos setting)
    image, box = region
    try:
        return add_reviewed_face(identity, image, box, user=user, source_face=face)
    except UploadError:
        return None  # the very same face is already among their photos


def review_faces(faces, decision, user, identity=None, new_name=""):
    """One answer for many faces (the Review pages' selection): returns (the person named
    or None, the faces answered, the faces skipped). Faces already reviewed, and faces
    CONFIRM cannot apply to (the model named nobody), are skipped, not errors. Raises
    ReviewError, changing nothing, for a missing name or an unknown decision."""
    if decision not in DECISIONS:
        raise ReviewError(f"Unknown decision {decision!r}: use {', '.join(DECISIONS)}.")
    faces = list(faces)
    if decision == REJECT:
        # The strangers' base embeddings in one batch, before the transaction holds rows:
        # review_face then finds them stored.
        refresh_embeddings(faces)
    with transaction.atomic():
        target = (identity or identity_named(new_name, user)) if decision == NAME else None
        answered, skipped = [], 0
        for face in faces:
            try:
                answered.append(review_face(face, decision, user, identity=target)[0])
            except ReviewError:
                skipped += 1
    return target, answered, skipped


def undo_reviews(face_ids, user, created_identity_id=None):
    """Take back the answers user gave to these faces: each goes back to the inbox and the
    photo it became is deleted (its files after the commit); the person the answer created
    (created_identity_id) goes too when nothing else refers to them. Answers given by
    someone else are left alone. Returns the number of faces taken back. Safe to run twice:
    the second run finds nothing to undo. Audited."""
    with transaction.atomic():
        faces = (
            PredictionFace.objects.select_for_update()
            .filter(pk__in=face_ids, reviewed_by=user)
            .exclude(review=PredictionFace.Review.PENDING)
        )
        ids = list(faces.values_list("pk", flat=True))
        FaceImage.objects.filter(source_face__in=ids).delete()
        PredictionFace.objects.filter(pk__in=ids).update(
            review=PredictionFace.Review.PENDING,
            reviewed_identity=None,
            reviewed_by=None,
            reviewed_at=None,
        )
        if created_identity_id:
            _delete_if_unused(created_identity_id, user)
        if ids:
            audit.record(user, "faces.review_undo", None, faces=ids)
    return len(ids)


def _delete_if_unused(identity_id, user):
    unused = Identity.objects.filter(
        pk=identity_id,
        created_by=user,
        images__isnull=True,
        recognitions__isnull=True,
        reviewed_faces__isnull=True,
    )
    for identity in unused:
        audit.record(user, "identity.delete", identity, source="review undo")
        identity.delete()


def name_group(faces, user, identity=None, new_name=""):
    """Say that every face of a group is identity (or a new person called new_name).

    Faces already reviewed are skipped, so a rejected face is never added. Returns (the
    identity, the number of faces named). Raises ReviewError for a missing name.
    """
    with transaction.atomic():
        target = identity or identity_named(new_name, user)
        named = 0
        for face in faces:
            try:
                review_face(face, NAME, user, identity=target)
            except ReviewError:
                continue
            named += 1
        audit.record(user, "faces.name_group", target, faces=named)
    return target, named
