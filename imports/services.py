"""Bulk enrolment: preview a zip of people's photos, then import it in the background.

prepare_* check and list everything before anything is stored; confirm_import sends the
work to the "default" queue; run_import does it, one file at a time, and can be run again
after a crash: files already done are not done twice, and a photo added just before a
crash is recognised by its sha256 instead of being added again.
"""

import hashlib
import logging
import os
import posixpath
import re
import shutil
import tempfile
import uuid
import zipfile
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Min, Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from accounts import audit
from identities.models import Identity, normalise_name
from identities.people import identity_called
from identities.uploads import UploadError, add_face_image, clean_image

from .archive import ArchiveRefused, check_header, open_zip, read_member, scan_zip
from .models import BulkImport, ImportFile

Status = BulkImport.Status
State = ImportFile.State
# A worker that dies this many times on one import (a file that kills it, out of memory)
# is not given it again.
MAX_ATTEMPTS = 3

log = logging.getLogger(__name__)
__all__ = ["ArchiveRefused", "confirm_import", "prepare_folder", "prepare_zip", "run_import"]


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


# --- confirm and run ----------------------------------------------------------------------


class QueueUnavailable(Exception):
    """The task queue (broker) cannot be reached: nothing was queued; try again later."""


QUEUE_DOWN = (
    "The task queue cannot be reached, so the import was not started. Press Resume once it "
    "is back, or Discard."
)


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


def enqueue(import_id):
    """Hand the import to the workers; False (and the import stopped, with the reason)
    when the broker cannot be reached."""
    from kombu.exceptions import OperationalError

    from .tasks import run_import

    try:
        run_import.delay(import_id)
    except OperationalError:
        log.warning("import %s: the task queue is unreachable", import_id, exc_info=True)
        BulkImport.objects.filter(pk=import_id, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=timezone.now(), error=QUEUE_DOWN
        )
        return False
    BulkImport.objects.filter(pk=import_id, status=Status.QUEUED).update(
        heartbeat_at=timezone.now(), queue_sends=F("queue_sends") + 1
    )
    return True


def requeue_lost_imports():
    """Send again imports queued for longer than FACEWEB_QUEUE_LOST_SECONDS: their message
    may have been lost (a broker restarted without persistence). A second delivery of one
    that is still queued does nothing twice (claim_import).

    An import already sent FACEWEB_QUEUE_MAX_SENDS times stops with the reason, to be
    resumed or discarded. While another import runs (and reports), queued ones may be
    waiting behind it: they are left alone. Safe to repeat. Returns the ids sent again.
    """
    now = timezone.now()
    running_since = now - timedelta(seconds=settings.FACEWEB_IMPORT_STALE_SECONDS)
    if BulkImport.objects.filter(status=Status.RUNNING, heartbeat_at__gte=running_since).exists():
        return []
    cutoff = now - timedelta(seconds=settings.FACEWEB_QUEUE_LOST_SECONDS)
    waiting = BulkImport.objects.filter(status=Status.QUEUED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, confirmed_at__lt=cutoff)
    )
    given_up = waiting.filter(queue_sends__gte=settings.FACEWEB_QUEUE_MAX_SENDS)
    for bulk in given_up.only("pk", "confirmed_at", "queue_sends"):
        BulkImport.objects.filter(pk=bulk.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=now, error=_never_delivered(bulk, now)
        )
    return [pk for pk in waiting.values_list("pk", flat=True) if enqueue(pk)]


def _never_delivered(bulk, now):
    minutes = round((now - (bulk.confirmed_at or now)).total_seconds() / 60)
    return (
        f"The task queue never delivered this import: it was sent to the task queue "
        f"{bulk.queue_sends} times over {minutes} minutes and no worker took it (its message "
        "was lost, or no worker is running). Press Resume once the workers run, or Discard."
    )


def claim_import(import_id, worker=""):
    """Take a queued import with one conditional UPDATE; True when this caller won.

    A import this same worker already shows as running comes back because the process
    running it died (Celery re-delivers a task whose process was lost): it is taken again
    and resumed, up to MAX_ATTEMPTS times.
    """
    now = timezone.now()
    claimed = BulkImport.objects.filter(pk=import_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker, attempts=1
    )
    if claimed or not worker:
        return bool(claimed)
    lost = BulkImport.objects.filter(pk=import_id, status=Status.RUNNING, worker=worker)
    if lost.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=Status.FAILED,
        finished_at=now,
        error=f"The worker died {MAX_ATTEMPTS} times on this import (out of memory?). "
        "Press Resume to try the remaining files again.",
    ):
        return False
    return lost.update(heartbeat_at=now, attempts=F("attempts") + 1) == 1


def run_import(import_id, worker=""):
    """Import every file still waiting; returns the final status, or None if not claimed.

    Safe to run again at any point: each file's outcome is committed as soon as it is
    known, and a re-run only looks at files still waiting.
    """
    if not claim_import(import_id, worker):
        return None
    bulk = BulkImport.objects.select_related("created_by").get(pk=import_id)
    try:
        with bulk.archive.open("rb") as stored, open_zip(stored) as zip_file:
            import_waiting_files(bulk, zip_file)
    except (ArchiveRefused, OSError) as exc:
        finish(bulk, Status.FAILED, f"The zip could not be read any more: {exc}")
    except Exception as exc:
        finish(bulk, Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    else:
        finish(bulk, Status.SUCCEEDED)
    return BulkImport.objects.values_list("status", flat=True).get(pk=import_id)


def import_waiting_files(bulk, zip_file):
    members = zip_file.infolist()
    people = {}
    for item in bulk.files.filter(state=State.PENDING).order_by("position").iterator():
        identity = people.get(item.person) or identity_called(item.person, bulk.created_by)[0]
        people[item.person] = identity
        state, reason, image = import_file(bulk, identity, item, members[item.position], zip_file)
        ImportFile.objects.filter(pk=item.pk).update(state=state, reason=reason, face_image=image)
        BulkImport.objects.filter(pk=bulk.pk).update(heartbeat_at=timezone.now())


def import_file(bulk, identity, item, info, zip_file):
    """Add one member as a photo of identity; returns (state, reason, FaceImage or None)."""
    data = read_member(zip_file, info)
    if data is None or hashlib.sha256(data).hexdigest() != item.sha256:
        return State.FAILED, "The file changed since the preview.", None
    already = identity.images.filter(sha256=item.sha256).first()
    if already is not None:
        if bulk.confirmed_at and already.uploaded_at >= bulk.confirmed_at:
            # Added by this import just before its worker died; the row was not updated.
            return State.ADDED, "", already
        return State.SKIPPED, f"Already among {identity.name}'s photos.", None
    try:
        image = add_face_image(
            identity,
            clean_image(data),
            original_name=os.path.basename(item.path),
            user=bulk.created_by,
        )
    except UploadError as exc:
        return State.FAILED, str(exc), None
    except (ArchiveRefused, OSError, DatabaseError):
        raise  # the zip, the storage or the database failed: the import stops, to be resumed
    except Exception as exc:
        # One photo that breaks something further down (face detection) must not stop the
        # import for ever: Resume would fail on the same file again.
        log.exception("import %s: %s could not be processed", bulk.pk, item.path)
        return State.FAILED, f"This photo could not be processed ({type(exc).__name__}).", None
    return State.ADDED, image.problem, image


def finish(bulk, status, error=""):
    # Only a running import is finished, so one the reaper already stopped stays stopped.
    done = BulkImport.objects.filter(pk=bulk.pk, status=Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now()
    )
    if done and status == Status.SUCCEEDED:
        counts = progress(bulk)
        audit.record(bulk.created_by, "import.finish", bulk, **counts_for_audit(counts))
        touched = Identity.objects.filter(
            images__in=bulk.files.filter(state=State.ADDED).values("face_image")
        ).values_list("pk", flat=True)
        note_changed(set(touched))
        name = bulk.archive.name
        # The row stays as the import's record, no longer naming a zip that is gone.
        BulkImport.objects.filter(pk=bulk.pk).update(archive="")
        transaction.on_commit(lambda: default_storage.delete(name))


def note_changed(identity_ids):
    from training import services

    services.note_identities_changed(identity_ids)


def counts_for_audit(counts):
    return {k: counts[k] for k in ("total", "added", "skipped", "failed")}


# --- progress -----------------------------------------------------------------------------


def progress(bulk):
    """{total, done, waiting, added, skipped, failed, percent} of an import's files."""
    states = Counter(dict(bulk.files.values_list("state").annotate(n=Count("pk")).order_by()))
    total = sum(states.values())
    done = total - states[State.PENDING]
    return {
        "total": total,
        "done": done,
        "waiting": states[State.PENDING],
        "added": states[State.ADDED],
        "skipped": states[State.SKIPPED],
        "failed": states[State.FAILED],
        "percent": round(100 * done / total) if total else 100,
    }


def stop_if_stale(bulk):
    """Stop a running import whose worker stopped reporting, so Resume can restart it."""
    cutoff = timezone.now() - timedelta(seconds=settings.FACEWEB_IMPORT_STALE_SECONDS)
    stopped = BulkImport.objects.filter(
        pk=bulk.pk, status=Status.RUNNING, heartbeat_at__lt=cutoff
    ).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error="The worker importing this stopped reporting (it was killed or lost). "
        "Press Resume to import the remaining files.",
    )
    if stopped:
        bulk.refresh_from_db()
    return bulk


def requeue_left_by(worker):
    """Re-queue imports a worker was running when it died (called as it starts again)."""
    lost = list(
        BulkImport.objects.filter(status=Status.RUNNING, worker=worker).values_list("pk", flat=True)
    )
    for import_id in lost:
        if BulkImport.objects.filter(pk=import_id, status=Status.RUNNING, worker=worker).update(
            status=Status.QUEUED, worker="", queue_sends=0
        ):
            enqueue(import_id)
    return lost
