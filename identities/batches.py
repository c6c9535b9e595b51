"""Identifying several photos at once (files, or a zip of photos).

create_batch checks every photo as a single upload is checked (identities.uploads) before
anything is identified: a refused file gets a row saying why and changes nothing else.
Accepted photos are stored re-encoded, under random names, until they are identified: in
the request for a few photos, by a worker on the "default" queue for more (as bulk imports
are, and with their zip checks: imports.archive). run_batch claims the batch with a
conditional update, so a second delivery does nothing twice, and commits each photo's
Prediction together with its row, so a batch stopped half-way resumes where it stopped.
Claiming, finishing, stopping a batch whose worker went silent and sending again one whose
message was lost are the bookkeeping that training jobs and imports use too (faceweb.jobs).
"""

import logging
import time
import zipfile

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from PIL import Image

from accounts import audit
from faceweb import jobs as bookkeeping
from imports.archive import (
    ZIP_MAGIC,
    ArchiveRefused,
    Budget,
    check_header,
    check_no_overlap,
    check_total_size,
    is_system,
    open_zip,
    packed_size,
    read_member,
    unpack_limit,
)
from training import services

from .models import BatchPhoto, IdentifyBatch
from .recognitions import record_identification
from .uploads import UploadError, clean_image, read_upload, save_jpeg

Status = IdentifyBatch.Status
State = BatchPhoto.State
FOLDER = "identify-batches"
QUEUE_DOWN = (
    "The task queue cannot be reached, so these photos were not identified. Press Resume "
    "once it is back."
)
log = logging.getLogger(__name__)
__all__ = ["BatchRefused", "create_batch", "requeue_lost_batches", "run_batch", "start_batch"]


class BatchRefused(Exception):
    """The whole request is refused (nothing stored); the message says why."""


# --- receiving ----------------------------------------------------------------------------


def create_batch(files, user, strictness="normal"):
    """Check uploaded files (photos and zips of photos) and record a queued batch.

    Returns (batch or None, [(name, reason)] of refused files); None, and nothing stored,
    when no photo is usable. Raises BatchRefused, storing nothing, for a hostile or
    damaged zip, an unknown strictness or too many photos. Not idempotent.
    """
    if strictness not in services.STRICTNESS_CHOICES:
        raise BatchRefused(f"Naming must be one of {', '.join(services.STRICTNESS_CHOICES)}.")
    if services.active_version() is None:
        raise services.NoActiveModel(
            "No model is active yet: train one on the Training page first."
        )
    rows = []
    try:
        for position, (name, data, reason) in enumerate(incoming_photos(files)):
            check_count(position + 1)
            rows.append(checked_row(position, name, data, reason))
        if not any(row.staged for row in rows):
            return None, refused_of(rows)
        with transaction.atomic():
            batch = IdentifyBatch.objects.create(
                strictness=strictness, source_name=source_name(files, rows), created_by=user
            )
            for row in rows:
                row.batch = batch
            BatchPhoto.objects.bulk_create(rows, batch_size=500)
            audit.record(user, "identify.batch", batch, photos=len(rows))
    except BaseException:
        delete_staged(rows)
        raise
    return batch, refused_of(rows)


def check_count(count):
    limit = settings.FACEWEB_IDENTIFY_MAX_PHOTOS
    if count > limit:
        raise BatchRefused(f"At most {limit} photos at a time; split them into smaller batches.")


def checked_row(position, name, data, reason):
    """An unsaved BatchPhoto: the photo checked and stored, or refused with the reason."""
    staged = ""
    if not reason:
        try:
            staged = save_jpeg(FOLDER, clean_image(data).image)
        except UploadError as exc:
            reason = str(exc)
    state = State.PENDING if staged else State.REFUSED
    return BatchPhoto(position=position, name=name[:255], staged=staged, state=state, reason=reason)


def refused_of(rows):
    return [(row.name, row.reason) for row in rows if row.state == State.REFUSED]


def delete_staged(rows):
    for row in rows:
        if row.staged:
            default_storage.delete(str(row.staged))


def source_name(files, rows):
    if len(files) == 1:
        return (getattr(files[0], "name", "") or "upload")[:255]
    return f"{len(rows)} photos"


def incoming_photos(files):
    """(name, bytes or None, refusal reason) for each photo sent, a zip's photos in turn.

    Raises BatchRefused for a zip that is refused whole (see imports.archive).
    """
    for uploaded in files:
        name = getattr(uploaded, "name", "") or "photo"
        if is_zip(uploaded):
            try:
                yield from zip_photos(uploaded, name)
            except ArchiveRefused as exc:
                raise BatchRefused(f"{name}: {exc}") from None
            continue
        try:
            yield name, read_upload(uploaded), ""
        except UploadError as exc:
            yield name, None, str(exc)


def is_zip(uploaded):
    head = uploaded.read(4)
    uploaded.seek(0)
    return head == ZIP_MAGIC


def zip_photos(uploaded, zip_name):
    """The photos of a zip, with the bulk import's checks against zip bombs and hostile
    paths; folders do not matter here. System files (__MACOSX, .DS_Store) are passed over."""
    limit = settings.FACEWEB_IMPORT_MAX_ZIP_BYTES
    if file_size(uploaded) > limit:
        raise ArchiveRefused(f"The zip is larger than the {limit // 2**20:,} MB limit.")
    with open_zip(uploaded) as zip_file:
        infos = [(n, info) for n, info in enumerate(zip_file.infolist()) if not info.is_dir()]
        check_count(len(infos))
        check_no_overlap(zip_file)
        entries = [check_header(info, n) for n, info in infos]
        entries = [e for e in entries if not is_system(e.path.split("/"))]
        check_total_size(entries, packed_size(zip_file))
        budget = Budget(unpack_limit(packed_size(zip_file)))
        for entry in entries:
            yield from zip_entry(zip_file, entry, budget, zip_name)


def file_size(file):
    size = getattr(file, "size", None)
    if size is None:
        size = file.seek(0, 2)
        file.seek(0)
    return size


def zip_entry(zip_file, entry, budget, zip_name):
    name = f"{zip_name}/{entry.path}"
    if entry.skip_reason:
        yield name, None, entry.skip_reason
        return
    data = read_member(zip_file, entry.info, budget)
    if data is None:
        yield name, None, "Compressed with a method faceweb cannot read; zip it again."
    elif data.startswith(ZIP_MAGIC):
        yield name, None, "A zip inside the zip; zips inside zips are not opened."
    else:
        yield name, data, ""


# --- starting -----------------------------------------------------------------------------


def start_batch(batch):
    """Identify a new (or stopped) batch: now for a few photos, else in the background.

    When the broker cannot take it the batch is stopped with the reason, to be resumed.
    Returns False when the batch was neither queued nor stopped.
    """
    if not IdentifyBatch.objects.filter(
        pk=batch.pk, status__in=[Status.QUEUED, Status.FAILED]
    ).update(status=Status.QUEUED, error="", finished_at=None, queue_sends=0):
        return False
    waiting = batch.photos.filter(state=State.PENDING).count()
    if waiting <= settings.FACEWEB_IDENTIFY_INLINE_PHOTOS:
        run_batch(batch.pk)
    else:
        enqueue(batch.pk)
    batch.refresh_from_db()
    return True


def enqueue(batch_id):
    """Hand the batch to the workers; False (and the batch stopped) when the broker cannot
    be reached."""
    try:
        bookkeeping.send(identify_batch, IdentifyBatch, batch_id, QUEUE_DOWN)
    except bookkeeping.QueueUnavailable:
        return False
    bookkeeping.record_send(IdentifyBatch, batch_id)
    return True


def requeue_lost_batches():
    """Send again batches queued for longer than FACEWEB_QUEUE_LOST_SECONDS: their message
    may have been lost (a broker restarted without persistence), or the request that was to
    start them died first. A second delivery of one still queued does nothing twice
    (claim_batch).

    A batch already sent FACEWEB_QUEUE_MAX_SENDS times stops with the reason, to be
    resumed. While another batch runs (and reports), queued ones may be waiting behind it:
    they are left alone. Safe to repeat. Returns the ids sent again.
    """
    return bookkeeping.requeue_lost(
        IdentifyBatch,
        busy_seconds=settings.FACEWEB_IMPORT_STALE_SECONDS,
        queued_at="created_at",
        never_delivered=_never_delivered,
        enqueue=enqueue,
    )


def _never_delivered(batch, now):
    return (
        "The task queue never delivered these photos: they were "
        f"{bookkeeping.times_sent(batch, batch.created_at, now)} and no worker took them "
        "(the message was lost, or no worker is running). Press Resume once the workers run."
    )


# --- identifying --------------------------------------------------------------------------


# Declared here, beside the code that sends it, rather than in identities.tasks, so that the
# two modules do not import each other; the name is the one queued messages know.
@shared_task(name="identities.tasks.identify_batch", bind=True, acks_late=True)
def identify_batch(self, batch_id):
    """Identify the photos of IdentifyBatch batch_id still waiting. A second delivery while
    it runs does nothing."""
    return run_batch(batch_id, worker=self.request.hostname or "")


def claim_batch(batch_id, worker=""):
    """Take a queued batch with one conditional UPDATE; True when this caller won.

    A batch delivered again after the process running it died is not taken again (an
    import is): it stays running until it is stopped as stale, then resumed by a person.
    """
    return bookkeeping.claim(IdentifyBatch, batch_id, worker)


def run_batch(batch_id, worker=""):
    """Identify every photo of the batch still waiting; returns the final status, or None
    when another delivery has it. Safe to run again: each photo's outcome is committed with
    its Prediction, and a re-run only looks at photos still waiting."""
    if not claim_batch(batch_id, worker):
        return None
    batch = IdentifyBatch.objects.select_related("created_by").get(pk=batch_id)
    try:
        for photo in batch.photos.filter(state=State.PENDING).order_by("position"):
            identify_photo(batch, photo)
            bookkeeping.report(IdentifyBatch, batch.pk)
    except services.NoActiveModel as exc:
        finish(batch, Status.FAILED, str(exc))
    except Exception as exc:
        finish(batch, Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    else:
        finish(batch, Status.SUCCEEDED)
    return IdentifyBatch.objects.values_list("status", flat=True).get(pk=batch_id)


def identify_photo(batch, photo):
    """Identify one staged photo and record its Prediction; the staged file goes after."""
    started = time.perf_counter()
    try:
        image = open_staged(photo.staged)
        result = services.identify(image, strictness=batch.strictness, with_embeddings=True)
    except (services.NoActiveModel, DatabaseError):
        raise
    except Exception as exc:
        # One photo that breaks face detection must not stop the others for ever.
        log.exception("batch %s: %s could not be identified", batch.pk, photo.name)
        reason = f"This photo could not be identified ({type(exc).__name__})."
        BatchPhoto.objects.filter(pk=photo.pk).update(state=State.REFUSED, reason=reason)
        return
    with transaction.atomic():
        user = batch.created_by
        prediction = record_identification(image, result, user, started, batch.strictness)
        BatchPhoto.objects.filter(pk=photo.pk).update(
            state=State.DONE, prediction=prediction, staged=""
        )
        audit.record(user, "identify", prediction, faces=len(prediction.faces), batch=batch.pk)
        name = str(photo.staged)
        transaction.on_commit(lambda: default_storage.delete(name))


def open_staged(staged):
    with staged.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image.convert("RGB")


def finish(batch, status, error=""):
    # Only a running batch is finished, so one stopped as stale stays stopped.
    bookkeeping.finish(IdentifyBatch, batch.pk, status, error)


# --- progress and results -----------------------------------------------------------------


def progress(batch):
    """{total, done, waiting, identified, refused, percent} of a batch's photos."""
    counted = {"identified": State.DONE, "refused": State.REFUSED}
    return bookkeeping.progress(batch.photos, State.PENDING, counted)


def stop_if_stale(batch):
    """Stop a running batch whose worker stopped reporting, so Resume can restart it."""
    if bookkeeping.fail_stale(
        IdentifyBatch.objects.filter(pk=batch.pk),
        settings.FACEWEB_IMPORT_STALE_SECONDS,
        "The worker identifying these photos stopped reporting (it was killed or lost). "
        "Press Resume to identify the remaining photos.",
    ):
        batch.refresh_from_db()
    return batch


def is_doubtful(face_row):
    """A face a person should look at: unknown, or named under the review confidence."""
    if not face_row.is_pending:
        return False
    below = settings.FACEWEB_REVIEW_BELOW_CONFIDENCE
    return face_row.identity_id is None or face_row.confidence < below


def result_rows(batch):
    """One dict per identified photo: {photo, prediction, faces, doubtful}; the photos with
    doubtful faces (or none found) first, then in the order they were sent."""
    photos = batch.photos.filter(state=State.DONE).select_related("prediction")
    photos = photos.prefetch_related(
        "prediction__face_rows__identity", "prediction__face_rows__reviewed_identity"
    )
    rows = []
    for photo in photos:
        faces = list(photo.prediction.face_rows.all()) if photo.prediction else []
        doubtful = sum(1 for face in faces if is_doubtful(face))
        rows.append({"photo": photo, "faces": faces, "doubtful": doubtful or not faces})
    rows.sort(key=lambda row: (not row["doubtful"], row["photo"].position))
    return rows


def photos_of_zip_file(path):
    """The photos of a zip on disk, as (name, bytes or None, reason); for the command line.
    Raises BatchRefused as create_batch does."""
    with open(path, "rb") as handle:
        try:
            yield from zip_photos(handle, str(path))
        except (ArchiveRefused, zipfile.BadZipFile) as exc:
            raise BatchRefused(f"{path}: {exc}") from None
