"""Identifications recorded as identify_upload records them, without training a model."""

import time

import numpy as np

from identities.recognitions import record_identification
from tests.images import person_image

FACE_BOX = [16, 16, 96, 96]


def face(identity=None, confidence=0.9, embedding=None):
    """One face of an identify() result: identity None is an unknown face."""
    top = []
    if identity is not None:
        top = [{"identity": identity.name, "identity_id": identity.pk, "probability": confidence}]
    return {
        "box": FACE_BOX,
        "identity": identity.name if identity else None,
        "identity_id": identity.pk if identity else None,
        "confidence": confidence,
        "score": confidence,
        "top_k": top,
        "embedding": None if embedding is None else np.asarray(embedding, "<f4").tobytes(),
    }


def record(user, *faces, person=0, index=1):
    """A Prediction by user with these faces (see face()), its photo a generated one."""
    result = {"model_version": None, "faces": list(faces) or [face()]}
    return record_identification(person_image(person, index), result, user, time.perf_counter())
