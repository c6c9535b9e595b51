"""Training jobs: start one, send it to the training queue, run it in a worker, and notice
when its worker died.

- starting (the Train button, the API, `manage.py train`, beat): default_params,
  start_training, retrain_if_data_changed, cancel_job, requeue_lost_jobs;
- running (a training worker, through the run_training_job task): claim the job, export the
  photos, fine-tune, record a ModelVersion, finish. Safe to deliver twice: the second
  delivery finds the job already claimed and does nothing;
- dead workers: reap_stale_jobs, fail_jobs_left_by, remove_leftover_work_dirs.

The claim, finish and stale-worker bookkeeping is the one imports and identify batches use
(faceweb.jobs). The modules of training.ml that load torch are imported inside the functions
that train, so that a web process that starts a job never loads torch.
"""

import logging
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
from celery import shared_task
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.utils import timezone

from faceweb import jobs as bookkeeping
from faceweb.jobs import QueueUnavailable
from identities.models import PredictionFace

from .dataset import NotEnoughData, export_dataset, plan_dataset
from .evaluation import evaluate_checkpoint
from .ml.backbones import get_backbone
from .ml.config import TrainConfig
from .models import ModelVersion, TrainingJob
from .versions import activate_version, active_version

log = logging.getLogger(__name__)
Status = TrainingJob.Status
# Progress is written at most this often, so a fast loop does not hammer the database.
PROGRESS_INTERVAL_SECONDS = 1.0
# Starting weights named by a word rather than a file.
PRETRAINED_WORDS = {"auto", "imagenet", "none", "face"}
QUEUE_DOWN = (
    "The job could not be handed to the workers: the task queue is unreachable. "
    "Start the job again once it is back."
)


# --- parameters ----------------------------------------------------------------------------


def default_params(**overrides):
    """Training parameters from the settings, with overrides (TrainConfig fields + split)."""
    config = TrainConfig()
    if settings.FACEWEB_EPOCHS:
        config.epochs = settings.FACEWEB_EPOCHS
    params = config.to_dict() | {
        "val_fraction": settings.FACEWEB_VAL_FRACTION,
        "split_seed": settings.FACEWEB_SPLIT_SEED,
    }
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"Unknown training parameter(s): {', '.join(sorted(unknown))}")
    if overrides.get("pretrained") is not None:
        overrides = overrides | {"pretrained": pretrained_weights_file(overrides["pretrained"])}
    params.update({k: v for k, v in overrides.items() if v is not None})
    params["pretrained"] = _pretrained_setting(params)
    TrainConfig.from_dict(split_config(params)[0])  # validates, raises ValueError
    return params


def _pretrained_setting(params):
    # FACEWEB_PRETRAINED chooses the ImageNet ResNets' starting weights ("auto" means it
    # for them); the face network's weights ship with faceweb.
    backbone = get_backbone(params["architecture"])
    if params["pretrained"] == "auto" and "imagenet" in backbone.pretrained_choices:
        return pretrained_weights_file(settings.FACEWEB_PRETRAINED)
    return params["pretrained"]


def pretrained_weights_file(value):
    """A job's `pretrained` parameter as given by a user: one of the words above, or the
    name of a file in FACEWEB_PRETRAINED_DIR (returned as its full path). Raises
    ValueError for anything else, whether or not it exists: a trainer must not be able to
    test which paths exist on the workers."""
    value = str(value).strip()
    if value in PRETRAINED_WORDS:
        return value
    folder = Path(settings.FACEWEB_PRETRAINED_DIR).resolve()
    path = (folder / value).resolve()
    if not path.is_relative_to(folder) or path == folder:
        raise ValueError(
            f"pretrained must be {', '.join(sorted(PRETRAINED_WORDS))} or the name of a "
            f"state-dict file in the models folder ({folder})."
        )
    return str(path)


def split_config(params):
    """(TrainConfig fields, split fields) from a job's params."""
    split_keys = {"val_fraction", "split_seed"}
    config = {k: v for k, v in params.items() if k not in split_keys}
    return config, {k: params[k] for k in split_keys if k in params}


# --- starting ------------------------------------------------------------------------------


def training_readiness():
    """None when a job can start, else the reason it cannot (for the Train button)."""
    try:
        plan_dataset(settings.FACEWEB_VAL_FRACTION, settings.FACEWEB_SPLIT_SEED)
    except NotEnoughData as exc:
        return str(exc)
    return None


def start_training(user=None, trigger=TrainingJob.Trigger.BUTTON, **params):
    """Create a queued TrainingJob and send it to the training queue once committed.

    When a job with the same parameters on the same photos is already queued or running
    (two trainers pressed Train at the same moment, or one pressed twice), that job is
    returned instead and nothing is created; `job.already_started` tells which happened.
    Raises NotEnoughData when the photos cannot make a training set and ValueError for bad
    parameters; nothing is created then.
    """
    params = default_params(**params)
    crop = get_backbone(params["architecture"]).crop
    plan = plan_dataset(params["val_fraction"], params["split_seed"], crop=crop)
    outer = connection.in_atomic_block
    with transaction.atomic():
        _serialise_job_starts()
        job = _same_job_in_progress(plan.dataset_hash, params)
        if job is None:
            job = TrainingJob.objects.create(
                params=params, created_by=user, trigger=trigger, dataset_hash=plan.dataset_hash
            )
            job.already_started = False
            transaction.on_commit(lambda: enqueue(job.pk))
        else:
            job.already_started = True
    if not outer and not job.already_started:
        # enqueue has run (on commit): say so when the broker refused the job, instead of
        # answering "queued" for a job that is already marked failed.
        job.refresh_from_db()
        if job.status == Status.FAILED:
            raise QueueUnavailable(job.error)
    return job


# Any fixed number: the key of the PostgreSQL advisory lock that start_training takes.
_JOB_START_LOCK = 0x66616365


def _serialise_job_starts():
    """Make concurrent start_training calls take turns until their transaction ends, so the
    look for a job in progress and the insert of a new one never interleave."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_JOB_START_LOCK])
    elif connection.vendor == "sqlite":
        # A write as the transaction's first statement takes SQLite's write lock now, before
        # the read: read first, and the insert after it fails with "database is locked" when
        # another start committed in between.
        TrainingJob.objects.filter(pk=-1).update(status=Status.QUEUED)


def _same_job_in_progress(dataset_hash, params):
    in_progress = TrainingJob.objects.filter(
        status__in=[Status.QUEUED, Status.RUNNING], dataset_hash=dataset_hash
    )
    for job in in_progress:
        # A running job's params gain resolved values; compare the ones asked for.
        if {key: job.params.get(key) for key in params} == params:
            return job
    return None


def retrain_if_data_changed():
    """Start a job when the training data differs from what the active model learnt.

    A cheap no-op (one dataset plan, no files read) when nothing changed, when there is not
    enough data, or when a job is already queued or running. Returns the job or None.
    """
    if TrainingJob.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]).exists():
        return None
    try:
        plan = plan_dataset(settings.FACEWEB_VAL_FRACTION, settings.FACEWEB_SPLIT_SEED)
    except NotEnoughData:
        return None
    current = active_version()
    if current is not None and current.dataset_hash == plan.dataset_hash:
        return None
    return start_training(trigger=TrainingJob.Trigger.SCHEDULE)


def enqueue(job_id):
    """Hand a job to the training queue; False (and the job failed, with the reason) when
    the broker cannot be reached."""
    try:
        result = bookkeeping.send(run_training_job, TrainingJob, job_id, QUEUE_DOWN)
    except QueueUnavailable:
        return False
    # heartbeat_at of a queued job: when it was last handed to the broker. Unlike an
    # import's, recorded whatever the status: a worker (or an eager one, in bench/) may have
    # claimed the job already, and its task id is still wanted.
    TrainingJob.objects.filter(pk=job_id).update(
        celery_task_id=result.id,
        heartbeat_at=timezone.now(),
        queue_sends=models.F("queue_sends") + 1,
    )
    return True


def requeue_lost_jobs():
    """Send again jobs queued for longer than FACEWEB_QUEUE_LOST_SECONDS: their message may
    have been lost (a broker restarted without persistence). A second delivery of a job
    still waiting in the queue does nothing twice (the worker claims a job once).

    A job already sent FACEWEB_QUEUE_MAX_SENDS times fails with the reason, and so does one
    the broker refuses now. While a job runs (and reports), the ones queued behind it wait
    their turn on the one training worker: they are left alone. Safe to repeat. Returns the
    ids sent again.
    """
    return bookkeeping.requeue_lost(
        TrainingJob,
        busy_seconds=settings.FACEWEB_JOB_STALE_SECONDS,
        queued_at="created_at",
        never_delivered=_never_delivered,
        enqueue=enqueue,
    )


def _never_delivered(job, now):
    return (
        "The task queue never delivered this job: it was "
        f"{bookkeeping.times_sent(job, job.created_at, now)} and no worker took it (its "
        "message was lost, or no training worker is running). Start a new job once the "
        "workers run."
    )


def cancel_job(job):
    """Ask a job to stop. A queued job is cancelled at once; a running one within a batch."""
    now = timezone.now()
    TrainingJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, finished_at=now, error="Cancelled before it started."
    )
    TrainingJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(cancel_requested=True)


# --- running, in a training worker ---------------------------------------------------------


# Declared here, beside the code that sends it, rather than in training.tasks: that module
# calls start_training (beat), so a task declared there would make the two import each
# other. The name is the one routes, time limits and queued messages know.
@shared_task(name="training.tasks.run_training_job", bind=True, acks_late=True)
def run_training_job(self, job_id):
    """Run TrainingJob job_id. A second delivery of the same job does nothing."""
    return run_job(job_id, worker=self.request.hostname or "")


def claim_job(job_id, worker=""):
    """Move a queued job to running with one conditional UPDATE; True if this caller won."""
    return bookkeeping.claim(TrainingJob, job_id, worker)


def finish_job(job_id, status, error=""):
    """Record a running job's end (a job the reaper already failed stays failed)."""
    retry_if_disconnected(
        lambda: bookkeeping.finish(TrainingJob, job_id, status, error, heartbeat_at=timezone.now())
    )


def retry_if_disconnected(write):
    """Run a database call; if the connection was dropped under it (database restarted, the
    connection killed by an admin or a proxy), open a new one and run it once more.

    A job runs for hours on one connection: without this, one dropped connection would
    leave the job shown as running until the reaper gives up on it.
    """
    try:
        return write()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise  # the transaction is lost; only its caller can start it again
        log.warning("database connection lost; reconnecting", exc_info=True)
        connection.close()
        return write()


def run_job(job_id, worker=""):
    """Run a queued job to its end; returns the job's final status (or None if not claimed)."""
    from .ml.model import PretrainedWeightsError  # torch
    from .ml.train import TrainingCancelled  # torch

    reap_stale_jobs()
    if not claim_job(job_id, worker):
        if worker and fail_if_lost_by(job_id, worker):
            remove_leftover_work_dirs()
            return Status.FAILED
        log.info("training job %s is not queued any more; nothing to do", job_id)
        return None
    work_dir = settings.FACEWEB_WORK_DIR / f"job-{job_id}-{uuid.uuid4().hex[:8]}"
    try:
        version = train_and_record(TrainingJob.objects.get(pk=job_id), work_dir)
        maybe_activate(version)
        finish_job(job_id, Status.SUCCEEDED)
    except TrainingCancelled:
        finish_job(job_id, Status.CANCELLED, "Cancelled by a user.")
    except (NotEnoughData, PretrainedWeightsError, ValueError) as exc:
        finish_job(job_id, Status.FAILED, str(exc))
    except Exception as exc:
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            finish_job(job_id, Status.FAILED, "The job ran past its time limit.")
        else:
            log.exception("training job %s failed", job_id)
            finish_job(job_id, Status.FAILED, f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return retry_if_disconnected(
        lambda: TrainingJob.objects.values_list("status", flat=True).get(pk=job_id)
    )


def train_and_record(job, work_dir):
    """Export, fit and store the checkpoint; returns the new ModelVersion."""
    from .ml.train import fit  # torch

    config_fields, split = split_config(job.params)
    config = TrainConfig.from_dict(config_fields)
    manifest = export_dataset(
        work_dir / "data",
        split.get("val_fraction", 0.2),
        split.get("split_seed", 0),
        crop=get_backbone(config.architecture).crop,
    )
    TrainingJob.objects.filter(pk=job.pk).update(
        dataset_hash=manifest.dataset_hash,
        params=job.params | {"fine_tune_from_resolved": config.resolved_fine_tune_from()},
    )
    reporter = ProgressReporter(job.pk)
    result = fit(
        work_dir / "data",
        config,
        on_epoch=reporter.on_epoch,
        on_batch=reporter.on_batch,
        should_stop=reporter.should_stop,
        strangers=stranger_embeddings(manifest.stranger_faces),
    )
    TrainingJob.objects.filter(pk=job.pk).update(device=result.device)
    return record_version(job, manifest, config, result, work_dir)


def stranger_embeddings(face_ids):
    """The stored base embeddings of these faces (marked "not anyone we know"): an M x D
    float tensor, or None for none."""
    import torch

    rows = PredictionFace.objects.filter(pk__in=face_ids).values_list("embedding", flat=True)
    vectors = [np.frombuffer(bytes(row), dtype="<f4") for row in rows if row]
    return torch.from_numpy(np.stack(vectors)) if vectors else None


class ProgressReporter:
    """Writes epochs, batch progress and the heartbeat to the job row; reads cancel requests."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.history = []
        self.last_write = 0.0
        self.cancel = False

    def on_epoch(self, stats):
        self.history.append({k: _round(v) for k, v in stats.__dict__.items()})
        retry_if_disconnected(
            lambda: TrainingJob.objects.filter(pk=self.job_id).update(
                history=self.history, heartbeat_at=timezone.now()
            )
        )

    def on_batch(self, epoch, batch, batches):
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_write = now
        progress = {"epoch": epoch, "batch": batch, "batches": batches}
        self.cancel = retry_if_disconnected(lambda: self._report(progress))

    def _report(self, progress):
        """Write progress and the heartbeat; True when a user asked the job to stop."""
        job = TrainingJob.objects.filter(pk=self.job_id)
        job.update(progress=progress, heartbeat_at=timezone.now())
        return job.filter(cancel_requested=True).exists()

    def should_stop(self):
        return self.cancel


def _round(value):
    return round(value, 4) if isinstance(value, float) else value


def record_version(job, manifest, config, result, work_dir):
    """Write the checkpoint atomically, store it and create its ModelVersion row."""
    from .ml.checkpoint import save_checkpoint  # torch

    config = config.resolved()
    backbone = get_backbone(config.architecture)

    metrics = {
        "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "train_images": manifest.count("train"),
        "val_images": manifest.count("val"),
        "seconds": round(result.seconds, 1),
    }
    # The model's outputs follow the folder order fit() saw; keep the class list in that order.
    by_folder = {c["folder"]: c for c in manifest.classes}
    classes = [by_folder[folder] for folder in result.classes]
    local = work_dir / "model.pt"
    sha256 = save_checkpoint(
        local,
        architecture=config.architecture,
        state_dict=result.state_dict,
        classes=classes,
        image_size=config.image_size,
        mean=list(backbone.mean),
        std=list(backbone.std),
        metrics=metrics,
        calibration=result.calibration,
        config=config.to_dict(),
    )
    metrics |= evaluate_checkpoint(local, manifest, work_dir / "data", classes)
    with open(local, "rb") as handle:
        name = default_storage.save(f"models/{uuid.uuid4().hex}.pt", File(handle))
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                job=job,
                artifact=name,
                sha256=sha256,
                size_bytes=local.stat().st_size,
                architecture=config.architecture,
                classes=classes,
                metrics=metrics,
                calibration=plain_values(result.calibration),
                params=job.params,
                dataset_hash=manifest.dataset_hash,
            )
    except Exception:
        default_storage.delete(name)
        raise


def plain_values(calibration):
    """The calibration without its tensors (those stay in the checkpoint: the centroids, the
    int8 ranges by activation), for the row."""

    def tensors(value):
        if isinstance(value, dict):
            return any(tensors(item) for item in value.values())
        return hasattr(value, "shape")

    return {key: value for key, value in calibration.items() if not tensors(value)}


def maybe_activate(version):
    """Activate a new version when nothing is active, when the people or photos changed, or
    when it is at least as accurate as the active one on the same data."""
    current = active_version()
    if current is None or (settings.FACEWEB_AUTO_ACTIVATE and _should_replace(current, version)):
        activate_version(version)


def _should_replace(current, new):
    if current.dataset_hash != new.dataset_hash:
        return True  # the people or photos changed: only the new model knows them all
    return (new.val_accuracy or 0) >= (current.val_accuracy or 0)


# --- dead workers --------------------------------------------------------------------------


def reap_stale_jobs():
    """Mark running jobs whose worker stopped reporting as failed; returns how many.

    Safe to run anywhere and any time: only rows whose heartbeat is older than the stale
    limit are touched, with one conditional UPDATE.
    """
    reaped = bookkeeping.fail_stale(
        TrainingJob.objects.all(),
        settings.FACEWEB_JOB_STALE_SECONDS,
        "The worker running this job stopped reporting (it was killed or lost). "
        "Start a new training job.",
    )
    if reaped:
        remove_leftover_work_dirs()
    return reaped


def fail_if_lost_by(job_id, worker):
    """Fail a job this same worker already shows as running: it comes back because the
    process running it died (Celery re-delivers a task whose process was lost). Running it
    again could loop forever on a job that kills its process (out of memory), so it stops
    (an import, done file by file, resumes instead).
    """
    lost = TrainingJob.objects.filter(pk=job_id, status=Status.RUNNING, worker=worker).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error="The worker process running this job died (killed, or out of memory). "
        "Start a new training job.",
    )
    return lost == 1


def fail_jobs_left_by(node_name):
    """Fail the jobs shown as running under a worker that is just starting: it runs nothing
    yet, so they were left behind when it died (an import is queued again instead)."""
    TrainingJob.objects.filter(status=Status.RUNNING, worker=node_name).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error="The worker was restarted while this job ran. Start a new training job.",
    )
    remove_leftover_work_dirs()


def remove_leftover_work_dirs():
    """Delete the work folders (face crops and a manifest with names) of jobs that are not
    running: a worker killed mid-job never reached its own clean-up. Returns how many.

    Safe any time and twice; a running job's folder is left to the job itself. Runs when a
    person is deleted, when jobs are reaped, when a worker starts and in daily housekeeping.
    """
    root = settings.FACEWEB_WORK_DIR
    if not root.is_dir():
        return 0
    running = set(TrainingJob.objects.filter(status=Status.RUNNING).values_list("pk", flat=True))
    removed = 0
    for folder in root.glob("job-*"):
        job_id = folder.name.split("-")[1]
        if folder.is_dir() and not (job_id.isdigit() and int(job_id) in running):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
