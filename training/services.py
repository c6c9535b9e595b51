"""The narrow interface other apps use: start and cancel training, the active model, identify.

torch is imported lazily here, so a web process that only lists identities never loads it.
"""

import hashlib
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .dataset import NotEnoughData, plan_dataset
from .models import ModelVersion, TrainingJob

__all__ = [
    "NotEnoughData",
    "ModelUnavailable",
    "NoActiveModel",
    "clear_model_cache",
    "activate_version",
    "analyse_enrolment_photo",
    "crop_for_box",
    "active_version",
    "cancel_job",
    "default_params",
    "identify",
    "note_identity_deleted",
    "reap_stale_jobs",
    "retrain_if_data_changed",
    "start_training",
    "training_readiness",
]


class NoActiveModel(Exception):
    """Nothing can be identified before a model has been trained and activated."""


class ModelUnavailable(NoActiveModel):
    """The active model's file is missing, unreadable or does not match its checksum."""


def default_params(**overrides):
    """Training parameters from the settings, with overrides (TrainConfig fields + split)."""
    from .ml.config import TrainConfig

    config = TrainConfig(pretrained=settings.FACEWEB_PRETRAINED)
    if settings.FACEWEB_EPOCHS:
        config.epochs = settings.FACEWEB_EPOCHS
    params = config.to_dict() | {
        "val_fraction": settings.FACEWEB_VAL_FRACTION,
        "split_seed": settings.FACEWEB_SPLIT_SEED,
    }
    unknown = set(overrides) - set(params)
    if unknown:
        raise ValueError(f"Unknown training parameter(s): {', '.join(sorted(unknown))}")
    params.update({k: v for k, v in overrides.items() if v is not None})
    TrainConfig.from_dict(split_config(params)[0])  # validates, raises ValueError
    return params


def split_config(params):
    """(TrainConfig fields, split fields) from a job's params."""
    split_keys = {"val_fraction", "split_seed"}
    config = {k: v for k, v in params.items() if k not in split_keys}
    return config, {k: params[k] for k in split_keys if k in params}


def training_readiness():
    """None when a job can start, else the reason it cannot (for the Train button)."""
    try:
        plan_dataset(settings.FACEWEB_VAL_FRACTION, settings.FACEWEB_SPLIT_SEED)
    except NotEnoughData as exc:
        return str(exc)
    return None


def start_training(user=None, trigger=TrainingJob.Trigger.BUTTON, **params):
    """Create a queued TrainingJob and send it to the training queue once committed.

    Raises NotEnoughData when the photos cannot make a training set and ValueError for bad
    parameters; nothing is created then.
    """
    params = default_params(**params)
    plan_dataset(params["val_fraction"], params["split_seed"])
    job = TrainingJob.objects.create(params=params, created_by=user, trigger=trigger)
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def retrain_if_data_changed():
    """Start a job when the training data differs from what the active model learnt.

    A cheap no-op (one dataset plan, no files read) when nothing changed, when there is not
    enough data, or when a job is already queued or running. Returns the job or None.
    """
    busy = TrainingJob.objects.filter(
        status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING]
    )
    if busy.exists():
        return None
    try:
        plan = plan_dataset(settings.FACEWEB_VAL_FRACTION, settings.FACEWEB_SPLIT_SEED)
    except NotEnoughData:
        return None
    current = active_version()
    if current is not None and current.dataset_hash == plan.dataset_hash:
        return None
    return start_training(trigger=TrainingJob.Trigger.SCHEDULE)


def _enqueue(job_id):
    from .tasks import run_training_job

    result = run_training_job.delay(job_id)
    TrainingJob.objects.filter(pk=job_id).update(celery_task_id=result.id)


def cancel_job(job):
    """Ask a job to stop. A queued job is cancelled at once; a running one within a batch."""
    now = timezone.now()
    TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.QUEUED).update(
        status=TrainingJob.Status.CANCELLED, finished_at=now, error="Cancelled before it started."
    )
    TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.RUNNING).update(
        cancel_requested=True
    )


def reap_stale_jobs():
    """Mark running jobs whose worker stopped reporting as failed; returns how many.

    Safe to run anywhere and any time: only rows whose heartbeat is older than the stale
    limit are touched, with one conditional UPDATE.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.FACEWEB_JOB_STALE_SECONDS)
    return TrainingJob.objects.filter(
        status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff
    ).update(
        status=TrainingJob.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker running this job stopped reporting (it was killed or lost). "
        "Start a new training job.",
    )


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


def face_images(image_ids):
    """{id: FaceImage} for the given ids that still exist (for thumbnails on job pages)."""
    from identities.models import FaceImage

    return FaceImage.objects.in_bulk(list(image_ids))


def note_identity_deleted(identity_id):
    """Flag versions that were trained on a deleted identity as stale."""
    for version in ModelVersion.objects.filter(is_stale=False):
        if any(c["id"] == identity_id for c in version.classes):
            ModelVersion.objects.filter(pk=version.pk).update(is_stale=True)


# --- faces ---------------------------------------------------------------------------------


@dataclass
class EnrolmentFace:
    """What face detection made of an enrolment photo."""

    status: str  # a FaceImage.Status value
    box: list | None  # [x, y, width, height] of this person's face
    score: float | None
    candidates: list  # [{"box": [...], "score": ...}] for every face found, largest first
    crop: object | None  # the PIL face crop training uses, when status is ok


def analyse_enrolment_photo(image):
    """Find the person's face in an enrolment photo; returns an EnrolmentFace. Read-only.

    One face (or one clearly larger than the others) makes the photo usable; none, several
    of similar size, or a tiny one give the matching status and no crop.
    """
    from identities.models import FaceImage

    from .ml.faces import MIN_FACE_SIZE, choose_subject, crop_face, detect_faces

    faces = detect_faces(image)
    candidates = [{"box": list(face.box), "score": face.score} for face in faces]
    subject = choose_subject(faces)
    if not faces:
        status = FaceImage.Status.NO_FACE
    elif subject is None:
        status = FaceImage.Status.SEVERAL_FACES
    elif subject.size < MIN_FACE_SIZE:
        status = FaceImage.Status.TOO_SMALL
    else:
        crop = crop_face(image, subject.box)
        return EnrolmentFace(
            FaceImage.Status.OK, list(subject.box), subject.score, candidates, crop
        )
    return EnrolmentFace(status, None, None, candidates, None)


def crop_for_box(image, box):
    """The face crop training uses for a box a user picked."""
    from .ml.faces import crop_face

    return crop_face(image, box)


# --- identification -----------------------------------------------------------------------

_predictor_lock = threading.Lock()
_loaded = {"version_id": None, "sha256": None, "predictor": None}


def _predictor_for(version):
    """The in-memory predictor for a version, loading it when another version became active.

    Each process keeps one model; a cheap query per request tells it when to switch, so a
    newly activated version is picked up without a restart.
    """
    with _predictor_lock:
        if _loaded["version_id"] != version.pk or _loaded["sha256"] != version.sha256:
            predictor = _load_predictor(version)
            _loaded.update(version_id=version.pk, sha256=version.sha256, predictor=predictor)
        return _loaded["predictor"]


def _load_predictor(version):
    from .ml.checkpoint import CheckpointError
    from .ml.predictor import Predictor

    _configure_torch_threads()
    try:
        with version.artifact.open("rb") as artifact, _local_copy(artifact) as path:
            return Predictor.from_checkpoint(path, expected_sha256=version.sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(
            f"Model {version} cannot be used ({exc}). Activate another version or train again."
        ) from exc


def clear_model_cache():
    """Forget the model this process holds; the next identify loads the active one again."""
    with _predictor_lock:
        _loaded.update(version_id=None, sha256=None, predictor=None)


@contextmanager
def _local_copy(artifact):
    """A filesystem path for a stored file: its own on local storage, else a temporary copy
    (object storage) that is removed afterwards."""
    try:
        path = artifact.path
    except (AttributeError, NotImplementedError):
        path = None
    if path:
        yield path
        return
    with tempfile.NamedTemporaryFile(suffix=".pt") as handle:
        shutil.copyfileobj(artifact, handle)
        handle.flush()
        yield handle.name


def _configure_torch_threads():
    if settings.FACEWEB_TORCH_THREADS > 0:
        import torch

        torch.set_num_threads(settings.FACEWEB_TORCH_THREADS)


STRICTNESS_CHOICES = ("strict", "normal", "lenient")


def identify(image, top_k=5, strictness="normal"):
    """Find every face in a PIL image and say who each one is, or that it is unknown.

    Returns {"model_version": id, "faces": [{"box": [x, y, w, h], "identity": name or None,
    "identity_id", "confidence", "score", "top_k": [{"identity", "identity_id",
    "probability"}]}], "latency_ms"}; faces are largest first, all classified in one
    batched forward pass. strictness is "strict", "normal" or "lenient"; the
    FACEWEB_UNKNOWN_THRESHOLD setting, when set, overrides the model's calibrated threshold.
    Raises NoActiveModel (or ModelUnavailable) and ValueError for an unknown strictness.
    Read-only.
    """
    if strictness not in STRICTNESS_CHOICES:
        raise ValueError(f"strictness must be one of {', '.join(STRICTNESS_CHOICES)}")
    version = active_version()
    if version is None:
        raise NoActiveModel("No model is active yet: train one on the Training page first.")
    started = time.perf_counter()
    predictor = _predictor_for(version)
    from .ml.identify import identify_faces

    found = identify_faces(
        predictor, image, top_k, strictness, threshold=settings.FACEWEB_UNKNOWN_THRESHOLD
    )
    faces = [_face_result(list(face.box), result, version.classes) for face, result in found]
    latency_ms = (time.perf_counter() - started) * 1000
    return {"model_version": version.pk, "faces": faces, "latency_ms": round(latency_ms, 1)}


def _face_result(box, result, classes):
    top_k = [
        {
            "identity": classes[index]["name"],
            "identity_id": classes[index]["id"],
            "probability": round(probability, 4),
        }
        for index, probability in result["top_k"]
    ]
    best = top_k[0]
    return {
        "box": box,
        "identity": best["identity"] if result["accepted"] else None,
        "identity_id": best["identity_id"] if result["accepted"] else None,
        "confidence": best["probability"],
        "score": round(result["score"], 4),
        "top_k": top_k,
    }
