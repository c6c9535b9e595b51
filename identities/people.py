"""People management: merge two people, split or move photos, delete several people.

Each action runs in one transaction and records itself in the audit trail. Photos keep
their stored files (names are random, not per person), so moving one only changes its row;
photos that are deleted (duplicates, deleted people) lose their files after the commit, by
identities.signals, so a rollback or a crash mid-way keeps every file of every kept row.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from accounts import audit
from training import services

from .models import FaceImage, Identity, normalise_name


@dataclass
class MergePlan:
    """What merging `absorbed` into `kept` will do, for the confirmation page."""

    kept: Identity
    absorbed: Identity
    moving: int  # photos that change person
    duplicates: int  # photos both have (same bytes); one copy goes


def plan_merge(kept, absorbed):
    """A MergePlan; reads only."""
    shared = _shared_hashes(kept, absorbed)
    return MergePlan(
        kept=kept,
        absorbed=absorbed,
        moving=absorbed.images.exclude(sha256__in=shared).count(),
        duplicates=len(shared),
    )


def _shared_hashes(one, other):
    return set(one.images.values_list("sha256", flat=True)) & set(
        other.images.values_list("sha256", flat=True)
    )


def merge_identities(kept, absorbed, user):
    """Move every photo of `absorbed` to `kept`, then delete `absorbed`; returns the plan.

    Of a photo both have, the copy training can use wins (kept's when both or neither can).
    Models trained on either person are marked stale. Raises ValueError for one person.
    """
    if kept.pk == absorbed.pk:
        raise ValueError("Choose two different people to merge.")
    with transaction.atomic():
        plan = plan_merge(kept, absorbed)
        _resolve_duplicates(kept, absorbed)
        absorbed.images.update(identity=kept)
        if absorbed.notes:
            kept.notes = "\n\n".join(n for n in (kept.notes, absorbed.notes) if n)
            kept.save(update_fields=["notes", "updated_at"])
        absorbed_id, absorbed_name = absorbed.pk, absorbed.name
        absorbed.delete()
        audit.record(
            user,
            "identity.merge",
            kept,
            merged=absorbed_name,
            merged_id=absorbed_id,
            moved=plan.moving,
            duplicates=plan.duplicates,
        )
        services.note_identities_changed({kept.pk, absorbed_id})
    return plan


def _resolve_duplicates(kept, absorbed):
    """Delete one copy of each photo both people have, keeping a usable one if any."""
    shared = _shared_hashes(kept, absorbed)
    theirs = {i.sha256: i for i in absorbed.images.filter(sha256__in=shared)}
    for ours in kept.images.filter(sha256__in=shared):
        other = theirs[ours.sha256]
        if other.is_usable and not ours.is_usable:
            ours.delete()  # the absorbed copy moves over in its place
        else:
            other.delete()


def identity_called(name, user):
    """(identity, created): the person called name in any case, made now if there is none.

    Safe when two requests make the same person at once: the loser of the race gets the
    winner's row. The name is normalised first (normalise_name), which raises
    ValidationError for a name that cannot be one.
    """
    name = normalise_name(name)[:200]
    found = Identity.objects.filter(name__iexact=name).first()
    if found:
        return found, False
    try:
        with transaction.atomic():
            return Identity.objects.create(name=name, created_by=user), True
    except IntegrityError:  # someone created them a moment ago
        return Identity.objects.get(name__iexact=name), False


def split_photos(identity, images, name, user):
    """Make a new person called name out of some of identity's photos; returns them."""
    with transaction.atomic():
        created = Identity.objects.create(name=name, created_by=user)
        moved = FaceImage.objects.filter(identity=identity, pk__in=[i.pk for i in images])
        count = moved.update(identity=created)
        audit.record(user, "identity.split", created, source=identity.name, photos=count)
        services.note_identities_changed({identity.pk})
    return created


@dataclass
class MovePlan:
    source: Identity
    target: Identity
    moving: list  # FaceImages that change person
    duplicates: list  # FaceImages the target already has (same bytes): deleted instead


def plan_move(source, images, target):
    """A MovePlan; reads only."""
    theirs = set(target.images.values_list("sha256", flat=True))
    return MovePlan(
        source=source,
        target=target,
        moving=[i for i in images if i.sha256 not in theirs],
        duplicates=[i for i in images if i.sha256 in theirs],
    )


def move_photos(source, images, target, user):
    """Give some of source's photos to target; returns the MovePlan carried out.

    A photo target already has is deleted from source rather than stored twice.
    """
    with transaction.atomic():
        plan = plan_move(source, list(source.images.filter(pk__in=[i.pk for i in images])), target)
        FaceImage.objects.filter(pk__in=[i.pk for i in plan.moving]).update(identity=target)
        for duplicate in plan.duplicates:
            duplicate.delete()
        audit.record(
            user,
            "photo.move",
            target,
            source=source.name,
            moved=len(plan.moving),
            duplicates_removed=len(plan.duplicates),
        )
        services.note_identities_changed({source.pk, target.pk})
    return plan


def delete_identities(identities, user):
    """Delete several people with all their photos; returns how many photos went."""
    photos = 0
    with transaction.atomic():
        for identity in identities:
            count = identity.images.count()
            audit.record(user, "identity.delete", identity, photos=count, bulk=True)
            identity_id = identity.pk
            identity.delete()
            services.note_identity_deleted(identity_id)
            photos += count
    return photos
