"""Run one training job: claim it, export the photos, fine-tune, record a ModelVersion.

Called by the Celery task with a job id; safe to call twice for the same id (the second
call finds the job already claimed and does nothing).
"""

import logging
import shutil
import time
import uuid

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from .dataset import NotEnoughData, export_dataset
from .evaluation import evaluate_checkpoint
from .models import ModelVersion, TrainingJob
from .services import (
    activate_version,
    active_version,
    reap_stale_jobs,
    remove_leftover_work_dirs,
    split_config,
)

log = logging.getLogger(__name__)
Status = TrainingJob.Status
# Progress is written at most this often, so a fast loop does not hammer the database.
PROGRESS_INTERVAL_SECONDS = 1.0


def claim_job(job_id, worker=""):
    """Move a queued job to running with one conditional UPDATE; True if this caller won."""
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker
    )
    return claimed == 1


def finish_job(job_id, status, error=""):
    # Only a running job is finished, so a job the reaper already failed stays failed.
    retry_if_disconnected(
        lambda: TrainingJob.objects.filter(pk=job_id, status=Status.RUNNING).update(
            status=status, error=error, finished_at=timezone.now(), heartbeat_at=timezone.now()
        )
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


def fail_if_lost_by(job_id, worker):
    """Fail a job this same worker already shows as running: it comes back because the
    process running it died (Celery re-delivers a task whose process was lost). Running it
    again could loop forever on a job that kills its process (out of memory), so it stops.
    """
    lost = TrainingJob.objects.filter(pk=job_id, status=Status.RUNNING, worker=worker).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error="The worker process running this job died (killed, or out of memory). "
        "Start a new training job.",
    )
    return lost == 1


def run_job(job_id, worker=""):
    """Run a queued job to its end; returns the job's final status (or None if not claimed)."""
    from .ml.model import PretrainedWeightsError
    from .ml.train import TrainingCancelled

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
    from .ml.backbones import get_backbone
    from .ml.config import TrainConfig
    from .ml.train import fit

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
    )
    TrainingJob.objects.filter(pk=job.pk).update(device=result.device)
    return record_version(job, manifest, config, result, work_dir)


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
    from .ml.backbones import get_backbone
    from .ml.checkpoint import save_checkpoint

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
    """The calibration without its tensors (those stay in the checkpoint), for the row."""
    return {key: value for key, value in calibration.items() if not hasattr(value, "shape")}


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
