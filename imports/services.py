"""Bulk enrolment, the web half: preview a zip of people's photos, rename its people,
confirm it, follow it, discard it.

prepare_* check and list everything before anything is stored; confirm_import sends the
work to the "default" queue, where imports.worker does it, one file at a time.
"""

import posixpath
import re
import shutil
import tempfile
import uuid
import zipfile
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from accounts import audit
from faceweb import jobs as bookkeeping
from faceweb.jobs import QueueUnavailable
from identities.models import Identity, normalise_name

from .archive import ArchiveRefused, check_header, open_zip, scan_zip
from .models import BulkImport, ImportFile
from .worker import QUEUE_DOWN, enqueue, progress

Status = BulkImport.Status
State = ImportFile.State

__all__ = [
    "ArchiveRefused",
    "QueueUnavailable",
    "confirm_import",
    "prepare_folder",
    "prepare_zip",
    "progress",
]


class RenameRefused(Exception):
    """Names an import cannot take; nothing was changed. The message is for the user."""


# --- preview ------------------------------------------------------------------------------


def prepare_zip(uploaded, user):
    """Check an uploaded zip and store it with its preview; returns the BulkImport.

    Raises ArchiveRefused, and stores nothing, when the zip is refused.
    """
    limit = settings.FACEWEB_IMPORT_MAX_ZIP_BYTES
    if uploaded.size > limit:
        raise ArchiveRefused(f"The zip is larger than the {limit // 2**20:,} MB limit.")
    with open_zip(uploaded) as zip_file:
        entries = scan_zip(zip_file)
    uploaded.seek(0)
    return record_preview(uploaded, getattr(uploaded, "name", "") or "upload.zip", entries, user)


def prepare_folder(files, paths, user):
    """Pack a folder sent file by file (with each file's relative path) into a zip, then
    treat it like an uploaded zip. Raises ArchiveRefused as prepare_zip does."""
    if not files or len(files) != len(paths):
        raise ArchiveRefused("Choose a folder with one sub-folder per person.")
    limit = settings.FACEWEB_IMPORT_MAX_ZIP_BYTES
    if sum(f.size for f in files) > limit:
        raise ArchiveRefused(f"The folder is larger than the {limit // 2**20:,} MB limit.")
    with tempfile.TemporaryFile() as packed:
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as zip_file:
            for uploaded, path in zip(files, paths, strict=True):
                check_header(zipfile.ZipInfo(path), 0)  # the same path rules as a zip's
                with zip_file.open(zipfile.ZipInfo(path), "w") as member:
                    shutil.copyfileobj(uploaded, member)
        packed.seek(0)
        with open_zip(packed) as zip_file:
            entries = scan_zip(zip_file)
        packed.seek(0)
        folder = paths[0].replace("\\", "/").split("/")[0] or "folder"
        return record_preview(packed, f"{folder}/", entries, user)


def record_preview(file, source_name, entries, user):
    """Store the zip and one ImportFile per entry, in one go; on failure no file is left."""
    name = default_storage.save(f"imports/{uuid.uuid4().hex}.zip", File(file))
    try:
        with transaction.atomic():
            bulk = BulkImport.objects.create(
                archive=name, source_name=source_name[:255], created_by=user
            )
            ImportFile.objects.bulk_create(file_rows(bulk, entries), batch_size=500)
            bulk.people = summarise_people(bulk)
            bulk.save(update_fields=["people"])
            audit.record(user, "import.preview", bulk, files=len(entries))
    except BaseException:
        default_storage.delete(name)
        raise
    return bulk


def file_rows(bulk, entries):
    existing = existing_photos({e.person for e in entries if e.person})
    seen = {}
    for entry in entries:
        reason = entry.skip_reason or duplicate_reason(entry, existing, seen)
        yield ImportFile(
            bulk_import=bulk,
            position=entry.position,
            path=entry.path,
            person=entry.person,
            size=entry.size,
            sha256=entry.sha256,
            state=State.SKIPPED if reason else State.PENDING,
            reason=reason,
        )


def existing_photos(names):
    """{(lower-cased person name, sha256)} of photos already stored for these people."""
    rows = identities_named(names).values_list("name", "images__sha256")
    return {(name.lower(), sha) for name, sha in rows if sha}


def identities_named(names):
    """Identities whose name is one of names, case-insensitively (as names are unique)."""
    return Identity.objects.annotate(lowered=Lower("name")).filter(
        lowered__in={name.lower() for name in names}
    )


def duplicate_reason(entry, existing, seen):
    key = (entry.person.lower(), entry.sha256)
    if key in existing:
        return f"Already among {entry.person}'s photos."
    if key in seen:
        return f"The same photo as {seen[key]}."
    seen[key] = entry.path
    return ""


def summarise_people(bulk):
    """[{name, folder, tidy, identity_id, identity_url, photos, skipped}] for the preview,
    by name; tidy is the name with "_" and "." made spaces (tidy_name)."""
    counts = (
        bulk.files.exclude(person="")
        .values("person")
        .annotate(
            photos=Count("pk", filter=Q(state=State.PENDING)),
            skipped=Count("pk", filter=~Q(state=State.PENDING)),
            first_path=Min("path"),
        )
        .order_by("person")
    )
    counts = list(counts)
    known = {i.name.lower(): i for i in identities_named(row["person"] for row in counts)}
    people = []
    for row in counts:
        identity = known.get(row["person"].lower())
        people.append(
            {
                "name": row["person"],
                "folder": posixpath.dirname(row["first_path"]),
                "tidy": tidy_name(row["person"]),
                "identity_id": identity.pk if identity else None,
                "identity_url": identity.get_absolute_url() if identity else "",
                "photos": row["photos"],
                "skipped": row["skipped"],
            }
        )
    return people


def tidy_name(name):
    """A folder name as a person's name: "_" becomes a space, and so does a "." between two
    letters ("Alan_Greenspan", "Alan.Greenspan" -> "Alan Greenspan"; "J. Smith" stays)."""
    name = re.sub(r"(?<=[^\W\d_])\.(?=[^\W\d_])", " ", name.replace("_", " "))
    return " ".join(name.split())


def rename_people(bulk, renames, user):
    """Change the names a previewed import will give its people: renames maps a name of
    the preview to the name to use (an existing person's in any case, or a new one).

    Raises RenameRefused, changing nothing, when the import is no longer a preview or a
    new name cannot be a name. Returns the number of people renamed. Audited.
    """
    current = {p["name"] for p in bulk.people}
    changes = {}
    for old, new in renames.items():
        if old not in current:
            continue  # a stale form: that name is not in this preview any more
        try:
            new = normalise_name(new)[:200]
        except ValidationError as exc:
            raise RenameRefused(f"{old}: {' '.join(exc.messages)}") from None
        if new != old:
            changes[old] = new
    with transaction.atomic():
        if not BulkImport.objects.filter(pk=bulk.pk, status=Status.PREVIEW).exists():
            raise RenameRefused("This import has started: its names can no longer change.")
        for old, new in changes.items():
            bulk.files.filter(person=old).update(person=new)
        bulk.people = summarise_people(bulk)
        bulk.save(update_fields=["people"])
        if changes:
            audit.record(user, "import.rename", bulk, names=changes)
    return len(changes)


def discard_import(bulk, user):
    """Throw away an import that was previewed and not confirmed, or that stopped (its zip
    and rows; the photos it added stay)."""
    if bulk.status not in (Status.PREVIEW, Status.FAILED):
        return False
    name = bulk.archive.name
    audit.record(user, "import.discard", bulk)
    bulk.delete()
    transaction.on_commit(lambda: default_storage.delete(name))
    return True


def purge_stale_previews():
    """Previews nobody confirmed within a day: their zips would otherwise stay for ever."""
    cutoff = timezone.now() - timedelta(days=1)
    for bulk in BulkImport.objects.filter(status=Status.PREVIEW, created_at__lt=cutoff):
        discard_import(bulk, None)


# --- confirm and follow -------------------------------------------------------------------


def confirm_import(bulk, user):
    """Queue a previewed import (or re-queue a stopped one); False when it is neither.

    Raises QueueUnavailable when the broker cannot take the task: the import is then left
    stopped with that reason, to be resumed or discarded, never "queued" with no message.
    """
    queued = BulkImport.objects.filter(
        pk=bulk.pk, status__in=[Status.PREVIEW, Status.FAILED]
    ).update(
        status=Status.QUEUED,
        # The first confirmation is kept: it tells photos this import added (before a crash
        # could record them) from photos that were there before.
        confirmed_at=Coalesce(F("confirmed_at"), timezone.now()),
        error="",
        attempts=0,
        queue_sends=0,
    )
    if not queued:
        return False
    audit.record(
        user, "import.confirm", bulk, photos=bulk.files.filter(state=State.PENDING).count()
    )
    if connection.in_atomic_block:
        transaction.on_commit(lambda: enqueue(bulk.pk))
    elif not enqueue(bulk.pk):
        raise QueueUnavailable(QUEUE_DOWN)
    return True


def requeue_lost_imports():
    """Send again imports queued for longer than FACEWEB_QUEUE_LOST_SECONDS: their message
    may have been lost (a broker restarted without persistence). A second delivery of one
    that is still queued does nothing twice (claim_import).

    An import already sent FACEWEB_QUEUE_MAX_SENDS times stops with the reason, to be
    resumed or discarded. While another import runs (and reports), queued ones may be
    waiting behind it: they are left alone. Safe to repeat. Returns the ids sent again.
    """
    return bookkeeping.requeue_lost(
        BulkImport,
        busy_seconds=settings.FACEWEB_IMPORT_STALE_SECONDS,
        queued_at="confirmed_at",
        never_delivered=_never_delivered,
        enqueue=enqueue,
    )


def _never_delivered(bulk, now):
    return (
        "The task queue never delivered this import: it was "
        f"{bookkeeping.times_sent(bulk, bulk.confirmed_at, now)} and no worker took it (its "
        "message was lost, or no worker is running). Press Resume once the workers run, or "
        "Discard."
    )


def stop_if_stale(bulk):
    """Stop a running import whose worker stopped reporting, so Resume can restart it."""
    stopped = bookkeeping.fail_stale(
        BulkImport.objects.filter(pk=bulk.pk),
        settings.FACEWEB_IMPORT_STALE_SECONDS,
        "The worker importing this stopped reporting (it was killed or lost). "
        "Press Resume to import the remaining files.",
    )
    if stopped:
        bulk.refresh_from_db()
    return bulk
