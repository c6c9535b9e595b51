"""The worker half of bulk imports: run a confirmed import, one file at a time.

imports.services previews and confirms an import (web side) and sends it here through the
run_import_task task, on the "default" queue. run_import can be run again after a crash:
files already done are not done twice, and a photo added just before a crash is recognised
by its sha256 instead of being added again. Claiming, finishing and the heartbeat are the
bookkeeping training jobs and identify batches use too (faceweb.jobs).
"""

import hashlib
import logging
import os

from celery import shared_task
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from accounts import audit
from faceweb import jobs as bookkeeping
from identities.models import Identity
from identities.people import identity_called
from identities.uploads import UploadError, add_face_image, clean_image
from training.services import note_identities_changed

from .archive import ArchiveRefused, open_zip, read_member
from .models import BulkImport, ImportFile

Status = BulkImport.Status
State = ImportFile.State
# A worker that dies this many times on one import (a file that kills it, out of memory)
# is not given it again.
MAX_ATTEMPTS = 3
QUEUE_DOWN = (
    "The task queue cannot be reached, so the import was not started. Press Resume once it "
    "is back, or Discard."
)

log = logging.getLogger(__name__)


def enqueue(import_id):
    """Hand the import to the workers; False (and the import stopped, with the reason)
    when the broker cannot be reached."""
    try:
        bookkeeping.send(run_import_task, BulkImport, import_id, QUEUE_DOWN)
    except bookkeeping.QueueUnavailable:
        return False
    bookkeeping.record_send(BulkImport, import_id)
    return True


# Declared here, beside the code that sends it, rather than in imports.tasks: that module
# calls imports.services (beat), which sends imports, so a task declared there would make
# them import each other. The name is the one queued messages know.
@shared_task(name="imports.tasks.run_import", bind=True, acks_late=True)
def run_import_task(self, import_id):
    """Import BulkImport import_id. A second delivery while it runs does nothing; a delivery
    after the process running it died resumes it where it stopped."""
    return run_import(import_id, worker=self.request.hostname or "")


def claim_import(import_id, worker=""):
    """Take a queued import with one conditional UPDATE; True when this caller won.

    An import this same worker already shows as running comes back because the process
    running it died (Celery re-delivers a task whose process was lost): it is taken again
    and resumed, up to MAX_ATTEMPTS times (a training job fails instead: it cannot resume).
    """
    if bookkeeping.claim(BulkImport, import_id, worker, attempts=1):
        return True
    if not worker:
        return False
    lost = BulkImport.objects.filter(pk=import_id, status=Status.RUNNING, worker=worker)
    now = timezone.now()
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
        bookkeeping.report(BulkImport, bulk.pk)


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
    done = bookkeeping.finish(BulkImport, bulk.pk, status, error)
    if done and status == Status.SUCCEEDED:
        counts = progress(bulk)
        audit.record(bulk.created_by, "import.finish", bulk, **counts_for_audit(counts))
        touched = Identity.objects.filter(
            images__in=bulk.files.filter(state=State.ADDED).values("face_image")
        ).values_list("pk", flat=True)
        note_identities_changed(set(touched))
        name = bulk.archive.name
        # The row stays as the import's record, no longer naming a zip that is gone.
        BulkImport.objects.filter(pk=bulk.pk).update(archive="")
        transaction.on_commit(lambda: default_storage.delete(name))


def counts_for_audit(counts):
    return {k: counts[k] for k in ("total", "added", "skipped", "failed")}


def progress(bulk):
    """{total, done, waiting, added, skipped, failed, percent} of an import's files."""
    counted = {"added": State.ADDED, "skipped": State.SKIPPED, "failed": State.FAILED}
    return bookkeeping.progress(bulk.files, State.PENDING, counted)


def requeue_left_by(worker):
    """Re-queue imports a worker was running when it died (called as it starts again; a
    training job is failed instead)."""
    lost = list(
        BulkImport.objects.filter(status=Status.RUNNING, worker=worker).values_list("pk", flat=True)
    )
    for import_id in lost:
        if BulkImport.objects.filter(pk=import_id, status=Status.RUNNING, worker=worker).update(
            status=Status.QUEUED, worker="", queue_sends=0
        ):
            enqueue(import_id)
    return lost
