"""What the base face network makes of an enrolment photo: the person's face, its crop, its
aligned chip and its embedding.

The modules of training.ml that load torch (the embedder) are imported inside the functions
that run them, so that a web process that only lists people never loads torch; face
detection and alignment (dlib, numpy) are imported here.
"""

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from identities.models import FaceImage

from .ml.detection import DetectOptions
from .ml.faces import (
    MIN_FACE_SIZE,
    FaceModelMissing,
    align_face,
    choose_subject,
    crop_face,
    detect_faces,
)


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


def analyse_reviewed_face(image, box):
    """An EnrolmentFace for a face a person pointed out at box (no detection): usable
    unless it is too small to learn from. Read-only."""
    candidates = [{"box": list(box), "score": None}]
    if min(box[2], box[3]) < MIN_FACE_SIZE:
        return EnrolmentFace(FaceImage.Status.TOO_SMALL, None, None, candidates, None)
    return _usable_face(image, list(box), None, candidates)


def _usable_face(image, box, score, candidates):
    crop = crop_for_box(image, box)
    return EnrolmentFace(
        FaceImage.Status.OK, box, score, candidates, crop, align_faces([(image, box)])[0]
    )


def detect_options():
    """The settings' face detection options (detector, smallest face, pixel budget)."""
    return DetectOptions(
        detector=settings.FACEWEB_FACE_DETECTOR,
        min_face=settings.FACEWEB_MIN_FACE_SIZE,
        max_megapixels=settings.FACEWEB_DETECT_MAX_MEGAPIXELS,
        threads=settings.FACEWEB_DETECT_THREADS,
    )


def crop_for_box(image, box):
    """The margin face crop (the ImageNet backbones' input) for a box. Pure."""
    return crop_face(image, box)


def align_faces(regions):
    """[AlignedFace] for regions, an iterable of (PIL photo, [x, y, width, height]):
    landmarks and chip of each face, and their base embeddings in one batched forward pass
    (only the chips are kept until then, so a generator can open one photo at a time).
    Pure; raises FaceModelMissing when dlib's model files are absent."""
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
    from .ml.embedder import embed_chips  # torch
    from .ml.model import PretrainedWeightsError  # torch

    configure_torch_threads()
    try:
        vectors = embed_chips(list(chips))
    except PretrainedWeightsError as exc:
        raise FaceModelMissing(str(exc)) from exc
    return [embedding_bytes(vector) for vector in vectors]


def base_embedding_model():
    """The name of the network base_embeddings uses (FaceImage.embedding_model)."""
    from .ml.embedder import EMBEDDING_MODEL  # torch

    return EMBEDDING_MODEL


def embedding_bytes(values):
    """An embedding (a list of floats) as float32 bytes, as FaceImage.embedding and
    PredictionFace.embedding store it."""
    return np.asarray(values, dtype="<f4").tobytes()


def configure_torch_threads():
    """Apply FACEWEB_TORCH_THREADS; called before a forward pass in a web process."""
    if settings.FACEWEB_TORCH_THREADS > 0:
        import torch  # only where a network runs

        torch.set_num_threads(settings.FACEWEB_TORCH_THREADS)
