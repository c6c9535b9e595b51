"""The narrow interface other apps call: start and cancel training, model versions, what the
face network makes of an enrolment photo, and identify.

Each part lives in a module of its own: training.jobs (starting, running and reaping jobs),
training.versions (model versions), training.enrolment (faces of enrolment photos) and
training.identification (identify with the active model). Other apps use these names from
here, so the modules behind them can change. Nothing here loads torch: those modules import
it only inside the functions that run a network.
"""

from faceweb.jobs import QueueUnavailable

from .dataset import NotEnoughData
from .enrolment import (
    AlignedFace,
    EnrolmentFace,
    align_faces,
    analyse_enrolment_photo,
    analyse_reviewed_face,
    base_embedding_model,
    base_embeddings,
    crop_for_box,
    detect_options,
    embedding_bytes,
)
from .identification import STRICTNESS_CHOICES, clear_model_cache, embed_faces, identify
from .jobs import (
    cancel_job,
    default_params,
    pretrained_weights_file,
    reap_stale_jobs,
    remove_leftover_work_dirs,
    requeue_lost_jobs,
    retrain_if_data_changed,
    start_training,
    training_readiness,
)

# torch-free; dlib's models load on first use
from .ml.faces import FaceModelMissing, reading_order

# Uploads convert photos with the function training and identification use (torch-free).
from .ml.pixels import to_rgb
from .versions import (
    ModelUnavailable,
    NoActiveModel,
    RetrainStatus,
    VersionInUse,
    activate_version,
    active_version,
    delete_version,
    face_images,
    note_identities_changed,
    note_identity_deleted,
    retrain_status,
    versions_trained_on,
)

__all__ = [
    "STRICTNESS_CHOICES",
    "AlignedFace",
    "EnrolmentFace",
    "FaceModelMissing",
    "ModelUnavailable",
    "NoActiveModel",
    "NotEnoughData",
    "QueueUnavailable",
    "RetrainStatus",
    "VersionInUse",
    "activate_version",
    "active_version",
    "align_faces",
    "analyse_enrolment_photo",
    "analyse_reviewed_face",
    "base_embedding_model",
    "base_embeddings",
    "cancel_job",
    "clear_model_cache",
    "crop_for_box",
    "default_params",
    "delete_version",
    "detect_options",
    "embed_faces",
    "embedding_bytes",
    "face_images",
    "identify",
    "note_identities_changed",
    "note_identity_deleted",
    "pretrained_weights_file",
    "reading_order",
    "reap_stale_jobs",
    "remove_leftover_work_dirs",
    "requeue_lost_jobs",
    "retrain_if_data_changed",
    "retrain_status",
    "start_training",
    "to_rgb",
    "training_readiness",
    "versions_trained_on",
]
