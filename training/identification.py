"""Identify the faces in a photo with the active model version, kept in memory per process.

The modules of training.ml that load torch (checkpoint, predictor) are imported inside the
functions that load a model, so that a web process that only lists people never loads torch.
"""

import shutil
import tempfile
import threading
import time
from contextlib import contextmanager

from django.conf import settings

from .enrolment import configure_torch_threads, detect_options, embedding_bytes
from .ml.identify import identify_faces
from .versions import ModelUnavailable, NoActiveModel, active_version

STRICTNESS_CHOICES = ("strict", "normal", "lenient")

_predictor_lock = threading.Lock()
_loaded = {"version_id": None, "sha256": None, "predictor": None}


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


# --- the model in memory -------------------------------------------------------------------


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
    from .ml.checkpoint import CheckpointError  # torch
    from .ml.predictor import Predictor  # torch

    configure_torch_threads()
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
