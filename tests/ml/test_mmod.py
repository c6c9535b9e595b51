"""dlib's CNN face detector in PyTorch: the same boxes as dlib's own, bad files refused."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.ml import mmod
from training.ml.dlib_file import DlibFileError
from training.ml.faces import face_model_path

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(scope="module")
def detector():
    return mmod.load_detector(face_model_path(mmod.MMOD_MODEL))


def dlib_boxes(path, pixels):
    import dlib

    found = dlib.cnn_face_detection_model_v1(str(path))(pixels, 0)
    return sorted((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in found)


@pytest.mark.skipif(not DATASETS.is_dir(), reason="shared/datasets is not here")
def test_it_finds_the_same_boxes_as_dlibs_own_detector_on_real_photos(detector):
    path = face_model_path(mmod.MMOD_MODEL)
    photos = sorted((DATASETS / "lfw_dev").glob("*/*.jpg"))[::25][:10]
    photos += sorted((DATASETS / "att_faces").glob("*/*"))[::80][:4]
    total = 0
    for photo in photos:
        pixels = np.asarray(Image.open(photo).convert("RGB"))
        expected = dlib_boxes(path, pixels)
        found = detector.detect(pixels)
        assert sorted((d.left, d.top, d.right, d.bottom) for d in found) == expected, photo
        total += len(expected)
    assert total >= 10


def test_its_pyramid_levels_shrink_by_a_sixth_and_never_overlap():
    rects, (rows, cols) = mmod.pyramid_rects(300, 400, padding=10, outer_padding=11)

    assert rects[0] == (11, 11, 400, 300)
    for previous, level in zip(rects, rects[1:], strict=False):
        assert level[2] == int(5 / 6 * previous[2]) and level[3] == int(5 / 6 * previous[3])
    for i, a in enumerate(rects):
        assert a[0] >= 0 and a[0] + a[2] <= cols and a[1] >= 0 and a[1] + a[3] <= rows
        assert not any(mmod._intersects(a, b) for b in rects[i + 1 :])
    assert cols == 400 + 22


def test_a_photo_without_a_face_gives_no_box(detector):
    pixels = np.full((200, 300, 3), 128, dtype=np.uint8)

    assert detector.detect(pixels) == []


@pytest.mark.parametrize("size", [(1, 1), (3, 40), (60, 60)])
def test_a_photo_smaller_than_its_window_gives_no_box(detector, size):
    assert detector.detect(np.zeros((*size, 3), dtype=np.uint8)) == []


def test_bf16_still_finds_the_face(detector):
    photo = sorted((DATASETS / "lfw_dev").glob("*/*.jpg"))[0] if DATASETS.is_dir() else None
    if photo is None:
        pytest.skip("shared/datasets is not here")
    pixels = np.asarray(Image.open(photo).convert("RGB"))

    exact, fast = detector.detect(pixels), detector.detect(pixels, dtype=torch.bfloat16)

    # A neighbouring window (of the next pyramid level) may win in bf16: the same face.
    assert len(fast) == len(exact) == 1
    assert iou(fast[0], exact[0]) > 0.5


def iou(a, b):
    width = min(a.right, b.right) - max(a.left, b.left) + 1
    height = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    inner = max(0, width) * max(0, height)
    return inner / (a.area + b.area - inner)


def test_a_truncated_detector_file_is_refused_with_where_it_ends(tmp_path):
    data = face_model_path(mmod.MMOD_MODEL).read_bytes()
    broken = tmp_path / "mmod.dat"
    broken.write_bytes(data[: len(data) // 2])

    with pytest.raises(DlibFileError, match="ends early"):
        mmod.load_detector(broken)


def test_the_face_networks_file_is_refused_as_a_detector():
    with pytest.raises(DlibFileError, match="MMOD loss"):
        mmod.load_detector(face_model_path("dlib_face_recognition_resnet_model_v1.dat"))
