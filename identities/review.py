"""Reviewing identified faces: the one code path behind the Review page, the result page,
"Do you know this person?", the API and bench/correction_loop.py.

A face is reviewed once. "correct" (the model's answer is right) and "this is <someone>"
turn the face into a training photo of that person, with its provenance; "not anyone we
know" remembers the face as a stranger's, and nothing automatic ever offers it again.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import audit

from .models import PredictionFace
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
