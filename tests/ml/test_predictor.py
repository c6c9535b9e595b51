import pytest
import torch
from PIL import Image

from training.ml.checkpoint import CheckpointError, save_checkpoint
from training.ml.config import IMAGENET_MEAN, IMAGENET_STD
from training.ml.model import build_model, embed_and_classify
from training.ml.predictor import Predictor

CLASSES = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}, {"id": 3, "name": "Linus"}]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("resnet18", len(CLASSES), "none", "all")


def images():
    return [
        Image.new("RGB", (48, 48), (200, 10, 10)),
        Image.new("L", (30, 60), 90),
        Image.new("RGBA", (48, 48), (0, 0, 200, 128)),
        Image.new("RGB", (100, 80), (10, 200, 10)),
    ]


def save(model, path, **overrides):
    fields = dict(
        architecture="resnet18",
        state_dict=model.state_dict(),
        classes=CLASSES,
        image_size=64,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        metrics={},
        calibration={},
        config={},
    )
    return save_checkpoint(path, **{**fields, **overrides})


def test_it_returns_sorted_probabilities_that_sum_to_one(model):
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)

    results = predictor.predict(images(), top_k=5)

    assert len(results) == 4
    for ranking in results:
        assert len(ranking) == 3  # never more than the number of classes
        assert sorted(index for index, _ in ranking) == [0, 1, 2]
        probabilities = [p for _, p in ranking]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


def test_it_returns_only_the_top_k(model):
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)

    full = predictor.predict(images()[:1], top_k=3)[0]

    (top,) = predictor.predict(images()[:1], top_k=1)[0]

    assert top[0] == full[0][0]
    assert top[1] == pytest.approx(full[0][1])


def test_it_runs_one_forward_pass_for_several_images(model):
    batch_sizes = []
    model.conv1.register_forward_hook(lambda module, args, output: batch_sizes.append(len(args[0])))
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)

    predictor.predict(images())

    assert batch_sizes == [4]


def test_it_returns_nothing_for_no_images(model):
    assert Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD).predict([]) == []


def test_it_predicts_the_same_from_a_checkpoint_as_from_the_model(model, tmp_path):
    sha256 = save(model, tmp_path / "model.pt")
    in_memory = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)

    loaded = Predictor.from_checkpoint(tmp_path / "model.pt", expected_sha256=sha256)

    assert loaded.classes == CLASSES
    expected = in_memory.predict(images())
    for got, want in zip(loaded.predict(images()), expected, strict=True):
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [p for _, p in got] == pytest.approx([p for _, p in want], abs=1e-5)


def test_it_softens_probabilities_with_the_calibrated_temperature(model, tmp_path):
    save(model, tmp_path / "plain.pt")
    save(model, tmp_path / "calibrated.pt", calibration={"temperature": 4.0})

    plain = Predictor.from_checkpoint(tmp_path / "plain.pt").predict(images())
    calibrated = Predictor.from_checkpoint(tmp_path / "calibrated.pt").predict(images())

    for plain_ranking, calibrated_ranking in zip(plain, calibrated, strict=True):
        assert calibrated_ranking[0][0] == plain_ranking[0][0]
        assert calibrated_ranking[0][1] < plain_ranking[0][1]


def test_it_refuses_a_checkpoint_whose_weights_do_not_fit(model, tmp_path):
    save(model, tmp_path / "model.pt", classes=CLASSES[:2])

    with pytest.raises(CheckpointError, match="does not hold a usable model"):
        Predictor.from_checkpoint(tmp_path / "model.pt")


def calibrated(model, threshold_scale=1.0):
    """A centroid calibration whose class centroids are the embeddings of images()[0]."""
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)
    batch = torch.stack([predictor.transform(image) for image in images()[:1]])
    with torch.inference_mode():
        embedding, _ = embed_and_classify(predictor.model, batch)
    return {
        "method": "centroid",
        "temperature": 1.0,
        "thresholds": {"strict": 0.999, "normal": 0.99, "lenient": 0.9},
        "centroids": torch.nn.functional.normalize(embedding.repeat(len(CLASSES), 1), dim=1),
    }


def far_away_image():
    """A picture of noise: unlike anything the classes were built from."""
    return Image.effect_noise((64, 64), 120).convert("RGB")


def test_identify_marks_a_far_away_face_unknown_at_a_high_threshold(model):
    predictor = Predictor(
        model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibrated(model)
    )

    near, far = predictor.identify([images()[0], far_away_image()], strictness="strict")

    assert near["accepted"] and near["score"] == pytest.approx(1.0, abs=1e-4)
    assert not far["accepted"] and far["score"] < near["score"]
    assert far["threshold"] == 0.999


def test_identify_accepts_every_face_at_threshold_zero(model):
    predictor = Predictor(
        model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibrated(model)
    )

    results = predictor.identify([far_away_image()], threshold=0.0)

    assert results[0]["accepted"] and results[0]["threshold"] == 0.0


def test_identify_returns_the_same_top_k_as_predict(model):
    predictor = Predictor(
        model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibrated(model)
    )

    results = predictor.identify(images(), top_k=2)

    assert [r["top_k"] for r in results] == predictor.predict(images(), top_k=2)


def test_identify_runs_one_forward_pass_for_several_images(model):
    predictor = Predictor(
        model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibrated(model)
    )
    batch_sizes = []
    model.conv1.register_forward_hook(lambda module, args, output: batch_sizes.append(len(args[0])))

    predictor.identify(images())

    assert batch_sizes == [4]


def test_identify_accepts_everything_without_calibrated_thresholds(model):
    calibration = calibrated(model) | {"thresholds": None}
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibration)

    results = predictor.identify([far_away_image()])

    assert results[0]["accepted"] and results[0]["threshold"] is None


def test_identify_refuses_an_unknown_strictness(model):
    predictor = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD)

    with pytest.raises(ValueError, match="strictness must be one of"):
        predictor.identify(images(), strictness="paranoid")


def test_calibration_survives_a_checkpoint_round_trip(model, tmp_path):
    calibration = calibrated(model)
    save(model, tmp_path / "model.pt", calibration=calibration)
    in_memory = Predictor(model, CLASSES, 64, IMAGENET_MEAN, IMAGENET_STD, calibration=calibration)

    loaded = Predictor.from_checkpoint(tmp_path / "model.pt")

    assert loaded.calibration["thresholds"] == calibration["thresholds"]
    assert torch.equal(loaded.centroids, calibration["centroids"])
    faces = [images()[0], far_away_image()]
    assert loaded.identify(faces, strictness="strict") == in_memory.identify(
        faces, strictness="strict"
    )


def face_model_and_chips():
    from tests.images import person_image
    from training.ml.backbones import get_backbone

    backbone = get_backbone("dlib-face-resnet")
    torch.manual_seed(0)
    model = build_model("dlib-face-resnet", len(CLASSES), "face", "fc", "cosine").eval()
    faces = [person_image(person, index, size=150) for person in range(3) for index in range(3)]
    return model, faces, backbone.mean, backbone.std


def face_predictor(model, mean, std, calibration):
    return Predictor(model, CLASSES, 150, mean, std, calibration=calibration)


def test_the_face_network_runs_in_int8_with_the_ranges_training_found(monkeypatch):
    from training.ml import predictor as predictor_module
    from training.ml.backbones import dlib_face_resnet

    monkeypatch.setattr(predictor_module, "cpu_has_vnni", lambda: True)
    model, faces, mean, std = face_model_and_chips()
    plain = face_predictor(model, mean, std, {})
    chips = torch.stack([plain.transform(face) for face in faces])
    ranges = dlib_face_resnet.int8_ranges(model, chips[:6])

    int8 = face_predictor(model, mean, std, {"int8_ranges": ranges})
    monkeypatch.setattr(predictor_module, "cpu_has_vnni", lambda: False)
    without_vnni = face_predictor(model, mean, std, {"int8_ranges": ranges})

    assert int8.int8 is not None and plain.int8 is None and without_vnni.int8 is None
    # On one torch thread the batch is shared out between the cores, to the same result.
    monkeypatch.setattr(predictor_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    with torch.inference_mode():
        assert torch.equal(int8._int8_on_every_core(chips[:5]), int8.int8(chips[:5]))
    fast, exact = int8.identify(faces), plain.identify(faces)
    assert [r["top_k"][0][0] for r in fast] == [r["top_k"][0][0] for r in exact]
    cosine = torch.nn.functional.cosine_similarity(
        torch.tensor([r["embedding"] for r in fast]), torch.tensor([r["embedding"] for r in exact])
    )
    assert cosine.min() > 0.99


def test_int8_ranges_that_do_not_fit_leave_the_network_in_float_and_say_so(monkeypatch, caplog):
    from training.ml import predictor as predictor_module

    monkeypatch.setattr(predictor_module, "cpu_has_vnni", lambda: True)
    model, faces, mean, std = face_model_and_chips()
    ranges = {"activation_post_process_0": torch.tensor([0.0, 1.0])}

    predictor = face_predictor(model, mean, std, {"int8_ranges": ranges})

    assert predictor.int8 is None
    assert "not int8" in caplog.text and "do not name" in caplog.text
    assert len(predictor.identify(faces[:2])) == 2
