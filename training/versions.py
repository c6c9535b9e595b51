"""Model versions: the active one, activating and deleting, what a deleted person leaves in
them, and whether the photos changed since the active one was trained."""

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from identities.models import FaceImage

from .dataset import current_dataset_hash
from .models import ModelVersion


class NoActiveModel(Exception):
    """Nothing can be identified before a model has been trained and activated."""


class ModelUnavailable(NoActiveModel):
    """The active model's file is missing, unreadable or does not match its checksum."""


class VersionInUse(Exception):
    """The active version cannot be deleted before another one replaces it."""


def active_version():
    return ModelVersion.objects.filter(is_active=True).first()


def activate_version(version):
    """Make this version the one every process identifies with.

    Raises ModelUnavailable, and changes nothing, when its file is missing, unreadable or
    does not match its checksum: the active version keeps serving.
    """
    verify_artifact(version)
    with transaction.atomic():
        others = ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk)
        others.update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(
            is_active=True, activated_at=timezone.now()
        )
    version.refresh_from_db()


def verify_artifact(version):
    """Raise ModelUnavailable unless the version's file is there and matches its sha256."""
    digest = hashlib.sha256()
    try:
        with version.artifact.open("rb") as artifact:
            for chunk in iter(lambda: artifact.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"Model {version} cannot be used: its file is missing ({exc})."
        ) from exc
    if digest.hexdigest() != version.sha256:
        raise ModelUnavailable(
            f"Model {version} cannot be used: its file does not match its checksum "
            "(it was changed or damaged). Train again or activate another version."
        )


def delete_version(version):
    """Delete a model version and its file. Raises VersionInUse for the active one: every
    identification needs a model, so it must be replaced (activate another) first."""
    with transaction.atomic():
        deleted, _ = ModelVersion.objects.filter(pk=version.pk, is_active=False).delete()
        if not deleted:
            raise VersionInUse(
                f"Model {version} is active: activate or train another version first."
            )
    transaction.on_commit(lambda: version.artifact.storage.delete(version.artifact.name))


def face_images(image_ids):
    """{id: FaceImage} for the given ids that still exist (for thumbnails on job pages)."""
    return FaceImage.objects.in_bulk(list(image_ids))


# --- people deleted or changed since a version was trained ---------------------------------


def versions_trained_on(identity_id):
    """The model versions whose classes include this identity (deleted or not)."""
    return [
        version
        for version in ModelVersion.objects.all()
        if any(c["id"] == identity_id for c in version.classes)
    ]


def note_identity_deleted(identity_id):
    """Note on every version trained on a deleted identity that their face is still in its
    weights; the name is removed from its class list and the class is never named again.

    Returns the versions noted. Safe to run twice.
    """
    noted = []
    deleted_at = timezone.now().isoformat(timespec="seconds")
    for version in versions_trained_on(identity_id):
        classes = [
            c | {"name": "(deleted person)", "folder": "", "deleted": True}
            if c["id"] == identity_id else c
            for c in version.classes
        ]  # fmt: skip
        notes = [n for n in version.deleted_identities if n["id"] != identity_id]
        notes.append({"id": identity_id, "deleted_at": deleted_at})
        ModelVersion.objects.filter(pk=version.pk).update(
            is_stale=True, classes=classes, deleted_identities=notes
        )
        noted.append(version)
    return noted


def note_identities_changed(identity_ids):
    """Mark versions trained on any of these identities stale: their photos changed (merged,
    split, moved or bulk-imported), so a retrain would learn something else. Safe to run
    twice; returns how many versions were marked."""
    identity_ids = set(identity_ids)
    stale = [
        version.pk
        for version in ModelVersion.objects.filter(is_stale=False)
        if any(c["id"] in identity_ids for c in version.classes)
    ]
    return ModelVersion.objects.filter(pk__in=stale).update(is_stale=True)


@dataclass
class RetrainStatus:
    """Whether the photos differ from what the active model learnt."""

    due: bool  # the data changed and there is enough of it to train
    active: object  # the active ModelVersion or None
    known_ids: set  # identity ids the active model can name


def retrain_status():
    """A RetrainStatus for banners on the people and training pages. Read-only; one query
    of (identity, sha256) pairs, no files read, so cheap enough for every page view."""
    active = active_version()
    known = {c["id"] for c in active.classes if not c.get("deleted")} if active else set()
    current = current_dataset_hash()
    due = current is not None and (active is None or active.dataset_hash != current)
    return RetrainStatus(due=due, active=active, known_ids=known)
