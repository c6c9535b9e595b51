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
from pathlib import Path

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from .dataset import NotEnoughData, plan_dataset
from .ml.faces import FaceModelMissing  # torch-free; dlib's model loads on first use

# Uploads convert photos with the function training and identification use (torch-free).
from .ml.pixels import to_rgb  # noqa: F401
from .models import ModelVersion, TrainingJob

__all__ = [
    "NotEnoughData",
    "FaceModelMissing",
    "ModelUnavailable",
    "NoActiveModel",
    "QueueUnavailable",
    "requeue_lost_jobs",
    "clear_model_cache",
    "activate_version",
    "analyse_enrolment_photo",
    "analyse_reviewed_face",
    "align_faces",
    "base_embedding_model",
    "base_embeddings",
    "crop_for_box",
    "active_version",
    "cancel_job",
    "default_params",
    "identify",
    "delete_version",
    "embed_faces",
    "note_identity_deleted",
    "note_identities_changed",
    "retrain_status",
    "versions_trained_on",
    "reap_stale_jobs",
    "remove_leftover_work_dirs",
    "retrain_if_data_changed",
    "start_training",
    "training_readiness",
]


class NoActiveModel(Exception):
    """Nothing can be identified before a model has been trained and activated."""


class QueueUnavailable(Exception):
    """The task queue (broker) cannot be reached: the job was not handed to any worker."""


class ModelUnavailable(NoActiveModel):
    """The active model's file is missing, unreadable or does not match its checksum."""


def default_params(**overrides):
    """Training parameters from the settings, with overrides (TrainConfig fields + split)."""
    from .ml.config import TrainConfig

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


# Starting weights named by a word rather than a file.
PRETRAINED_WORDS = {"auto", "imagenet", "none", "face"}


def _pretrained_setting(params):
    # FACEWEB_PRETRAINED chooses the ImageNet ResNets' starting weights ("auto" means it
    # for them); the face network's weights ship with faceweb.
    from .ml.backbones import get_backbone

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
    from .ml.backbones import get_backbone

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
            transaction.on_commit(lambda: _enqueue(job.pk))
        else:
            job.already_started = True
    if not outer and not job.already_started:
        # _enqueue has run (on commit): say so when the broker refused the job, instead of
        # answering "queued" for a job that is already marked failed.
        job.refresh_from_db()
        if job.status == TrainingJob.Status.FAILED:
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
        TrainingJob.objects.filter(pk=-1).update(status=TrainingJob.Status.QUEUED)


def _same_job_in_progress(dataset_hash, params):
    in_progress = TrainingJob.objects.filter(
        status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING],
        dataset_hash=dataset_hash,
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
    from kombu.exceptions import OperationalError

    from .tasks import run_training_job

    try:
        result = run_training_job.delay(job_id)
    except OperationalError:
        # The broker is down (Redis restarting): no worker will ever hear of this job, so it
        # fails now with the reason instead of waiting as "queued" forever.
        TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.QUEUED).update(
            status=TrainingJob.Status.FAILED,
            finished_at=timezone.now(),
            error="The job could not be handed to the workers: the task queue is unreachable. "
            "Start the job again once it is back.",
        )
        return False
    # heartbeat_at of a queued job: when it was last handed to the broker.
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
    now = timezone.now()
    running_since = now - timedelta(seconds=settings.FACEWEB_JOB_STALE_SECONDS)
    Status = TrainingJob.Status
    if TrainingJob.objects.filter(status=Status.RUNNING, heartbeat_at__gte=running_since).exists():
        return []
    cutoff = now - timedelta(seconds=settings.FACEWEB_QUEUE_LOST_SECONDS)
    waiting = TrainingJob.objects.filter(status=Status.QUEUED).filter(
        models.Q(heartbeat_at__lt=cutoff)
        | models.Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    given_up = waiting.filter(queue_sends__gte=settings.FACEWEB_QUEUE_MAX_SENDS)
    for job in given_up.only("pk", "created_at", "queue_sends"):
        TrainingJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=now, error=_never_delivered(job, now)
        )
    return [pk for pk in waiting.values_list("pk", flat=True) if _enqueue(pk)]


def _never_delivered(job, now):
    minutes = round((now - job.created_at).total_seconds() / 60)
    return (
        f"The task queue never delivered this job: it was sent to the task queue "
        f"{job.queue_sends} times over {minutes} minutes and no worker took it (its message "
        "was lost, or no training worker is running). Start a new job once the workers run."
    )


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
    reaped = TrainingJob.objects.filter(
        status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff
    ).update(
        status=TrainingJob.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker running this job stopped reporting (it was killed or lost). "
        "Start a new training job.",
    )
    if reaped:
        remove_leftover_work_dirs()
    return reaped


def remove_leftover_work_dirs():
    """Delete the work folders (face crops and a manifest with names) of jobs that are not
    running: a worker killed mid-job never reached its own clean-up. Returns how many.

    Safe any time and twice; a running job's folder is left to the job itself. Runs when a
    person is deleted, when jobs are reaped, when a worker starts and in daily housekeeping.
    """
    root = settings.FACEWEB_WORK_DIR
    if not root.is_dir():
        return 0
    running = set(
        TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING).values_list("pk", flat=True)
    )
    removed = 0
    for folder in root.glob("job-*"):
        job_id = folder.name.split("-")[1]
        if folder.is_dir() and not (job_id.isdigit() and int(job_id) in running):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


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


# --- faces ---------------------------------------------------------------------------------


@dataclass
class AlignedFace:
    """A face as the base face network sees it, and what that network made of it."""

    landmarks: list  # the 5 points [[x, y], ...] in the photo's pixels
    chip: object  # the PIL 150x150 aligned chip
    embedding: bytes  # float32 little-endian, as FaceImage.embedding stores it
    embedding_model: str  # which network made embedding


@dataclass
class EnrolmentFace:
    """What face detection made of an enrolment photo."""

    status: str  # a FaceImage.Status value
    box: list | None  # [x, y, width, height] of this person's face
    score: float | None
    candidates: list  # [{"box": [...], "score": ...}] for every face found, largest first
    crop: object | None  # the PIL face crop training uses, when status is ok
    aligned: AlignedFace | None = None  # landmarks, chip and base embedding, when ok


def analyse_enrolment_photo(image):
    """Find the person's face in an enrolment photo; returns an EnrolmentFace. Read-only.

    One face (or one clearly larger than the others) makes the photo usable, with its crop,
    aligned chip and base embedding; none, several of similar size, or a tiny one give the
    matching status and no crop. Raises FaceModelMissing when dlib's model files are absent.
    """
    from identities.models import FaceImage

    from .ml.faces import MIN_FACE_SIZE, choose_subject, detect_faces

    faces = detect_faces(image, detect_options())
    candidates = [{"box": list(face.box), "score": face.score} for face in faces]
    subject = choose_subject(faces)
    if not faces:
        status = FaceImage.Status.NO_FACE
    elif subject is None:
        status = FaceImage.Status.SEVERAL_FACES
    elif subject.size < MIN_FACE_SIZE:
        status = FaceImage.Status.TOO_SMALL
    else:
        return _usable_face(image, list(subject.box), subject.score, candidates)
    return EnrolmentFace(status, None, None, candidates, None)


def detect_options():
    """The settings' face detection options (detector, smallest face, pixel budget)."""
    from .ml.detection import DetectOptions

    return DetectOptions(
        detector=settings.FACEWEB_FACE_DETECTOR,
        min_face=settings.FACEWEB_MIN_FACE_SIZE,
        max_megapixels=settings.FACEWEB_DETECT_MAX_MEGAPIXELS,
        threads=settings.FACEWEB_DETECT_THREADS,
    )


def analyse_reviewed_face(image, box):
    """An EnrolmentFace for a face a person pointed out at box (no detection): usable
    unless it is too small to learn from. Read-only."""
    from identities.models import FaceImage

    from .ml.faces import MIN_FACE_SIZE

    candidates = [{"box": list(box), "score": None}]
    if min(box[2], box[3]) < MIN_FACE_SIZE:
        return EnrolmentFace(FaceImage.Status.TOO_SMALL, None, None, candidates, None)
    return _usable_face(image, list(box), None, candidates)


def _usable_face(image, box, score, candidates):
    from identities.models import FaceImage

    crop = crop_for_box(image, box)
    return EnrolmentFace(
        FaceImage.Status.OK, box, score, candidates, crop, align_faces([(image, box)])[0]
    )


def crop_for_box(image, box):
    """The margin face crop (the ImageNet backbones' input) for a box. Pure."""
    from .ml.faces import crop_face

    return crop_face(image, box)


def align_faces(regions):
    """[AlignedFace] for regions, an iterable of (PIL photo, [x, y, width, height]):
    landmarks and chip of each face, and their base embeddings in one batched forward pass
    (only the chips are kept until then, so a generator can open one photo at a time).
    Pure; raises FaceModelMissing when dlib's model files are absent."""
    from .ml.faces import align_face

    aligned = [align_face(image, box) for image, box in regions]
    chips = [chip for _, chip in aligned]
    embeddings = base_embeddings(chips)
    model = base_embedding_model() if chips else ""
    return [
        AlignedFace([list(p) for p in landmarks], chip, embedding, model)
        for (landmarks, chip), embedding in zip(aligned, embeddings, strict=True)
    ]


def base_embeddings(chips):
    """The base face network's embeddings of aligned chips (PIL, as align_faces makes
    them): [float32 little-endian bytes] in chips' order. The network is frozen and the
    same for every model version, so these can be compared across versions and stored
    with the face. One batched forward pass; pure. Raises FaceModelMissing when the
    network's weights are not installed."""
    if not chips:
        return []
    from .ml.embedder import embed_chips
    from .ml.model import PretrainedWeightsError

    _configure_torch_threads()
    try:
        vectors = embed_chips(list(chips))
    except PretrainedWeightsError as exc:
        raise FaceModelMissing(str(exc)) from exc
    return [embedding_bytes(vector) for vector in vectors]


def base_embedding_model():
    """The name of the network base_embeddings uses (FaceImage.embedding_model)."""
    from .ml.embedder import EMBEDDING_MODEL

    return EMBEDDING_MODEL


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


def identify(image, top_k=5, strictness="normal", with_embeddings=False):
    """Find every face in a PIL image and say who each one is, or that it is unknown.

    Returns {"model_version": id, "faces": [{"box": [x, y, w, h], "identity": name or None,
    "identity_id", "confidence", "score", "top_k": [{"identity", "identity_id",
    "probability"}]}], "too_small": [box], "latency_ms"}; faces are in reading order (rows
    top to bottom, each left to right), all classified in one batched forward pass;
    too_small lists the faces found but too small to identify. strictness is "strict",
    "normal" or "lenient"; the FACEWEB_UNKNOWN_THRESHOLD setting, when set, overrides the
    model's calibrated threshold. with_embeddings adds "embedding" (float32 bytes of the
    face's embedding) to each face.
    A person deleted since the model was trained is never named (see note_identity_deleted).
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

    answer = identify_faces(
        predictor, image, top_k, strictness, settings.FACEWEB_UNKNOWN_THRESHOLD, detect_options()
    )
    found = answer.faces
    faces = [_face_result(list(face.box), result, version.classes) for face, result in found]
    if with_embeddings:
        for face, (_, result) in zip(faces, found, strict=True):
            face["embedding"] = embedding_bytes(result["embedding"])
    latency_ms = (time.perf_counter() - started) * 1000
    return {
        "model_version": version.pk,
        "faces": faces,
        "too_small": [list(face.box) for face in answer.too_small],
        "latency_ms": round(latency_ms, 1),
    }


def _face_result(box, result, classes):
    # A deleted person's class stays in the weights, but is never named or listed.
    top_k = [
        {
            "identity": classes[index]["name"],
            "identity_id": classes[index]["id"],
            "probability": round(probability, 4),
        }
        for index, probability in result["top_k"]
        if not classes[index].get("deleted")
    ]
    best_index, best_probability = result["top_k"][0]
    named = result["accepted"] and not classes[best_index].get("deleted")
    best = top_k[0] if named else None
    return {
        "box": box,
        "identity": best["identity"] if named else None,
        "identity_id": best["identity_id"] if named else None,
        "confidence": round(best_probability, 4),
        "score": round(result["score"], 4),
        "top_k": top_k,
    }


def embedding_bytes(values):
    """An embedding (a list of floats) as float32 bytes, as PredictionFace.embedding
    stores it."""
    import numpy as np

    return np.asarray(values, dtype="<f4").tobytes()


def embed_faces(crops):
    """Embeddings of face crops (PIL, as crop_for_box makes them) by the active model.

    Returns (version id, [float32 bytes per crop]). One batched forward pass; read-only.
    Raises NoActiveModel. Embeddings of different versions are not comparable: callers
    keep the version with each one.
    """
    version = active_version()
    if version is None:
        raise NoActiveModel("No model is active yet: train one on the Training page first.")
    predictor = _predictor_for(version)
    results = predictor.identify(crops, top_k=1, threshold=0.0) if crops else []
    return version.pk, [embedding_bytes(result["embedding"]) for result in results]


# --- data changed since the active model ---------------------------------------------------


@dataclass
class RetrainStatus:
    """Whether the photos differ from what the active model learnt."""

    due: bool  # the data changed and there is enough of it to train
    active: object  # the active ModelVersion or None
    known_ids: set  # identity ids the active model can name


def retrain_status():
    """A RetrainStatus for banners on the people and training pages. Read-only; one query
    of (identity, sha256) pairs, no files read, so cheap enough for every page view."""
    from .dataset import current_dataset_hash

    active = active_version()
    known = {c["id"] for c in active.classes if not c.get("deleted")} if active else set()
    current = current_dataset_hash()
    due = current is not None and (active is None or active.dataset_hash != current)
    return RetrainStatus(due=due, active=active, known_ids=known)


def versions_trained_on(identity_id):
    """The model versions whose classes include this identity (deleted or not)."""
    return [
        version
        for version in ModelVersion.objects.all()
        if any(c["id"] == identity_id for c in version.classes)
    ]


class VersionInUse(Exception):
    """The active version cannot be deleted before another one replaces it."""


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
