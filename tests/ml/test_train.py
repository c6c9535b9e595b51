import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import models

from training.ml import feature_cache
from training.ml.config import TrainConfig
from training.ml.data import load_data
from training.ml.model import build_model, embed_and_classify, frozen_features, set_train_mode
from training.ml.train import TrainingCancelled, fit

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def write_dataset(root, train_per_class=8, val_per_class=4, colours=COLOURS, mode="RGB"):
    """Noisy solid-colour 48x48 images: an easy, separable 3-class problem."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.integers(-30, 30, size=(48, 48, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).convert(mode).save(folder / f"{i}.png")
    return root


def small_config(**overrides):
    # A lower peak rate than the default: three tiny batches per epoch are too few steps
    # for the default to settle in the 1-3 epochs a test can afford.
    values = dict(
        architecture="resnet18",
        epochs=1,
        batch_size=8,
        image_size=64,
        pretrained="none",
        seed=0,
        learning_rate=3e-4,
    )
    return TrainConfig(**{**values, **overrides})


def test_it_learns_an_easy_separable_dataset(tmp_path):
    data_dir = write_dataset(tmp_path)
    seen = []

    result = fit(data_dir, small_config(epochs=3), on_epoch=seen.append)

    assert result.classes == ["blue", "green", "red"]
    assert [s.epoch for s in result.history] == [1, 2, 3]
    assert seen == result.history
    assert result.best_val_accuracy >= 0.9  # chance is 1/3
    assert result.best_val_accuracy == result.history[result.best_epoch - 1].val_accuracy


def test_it_returns_the_best_weights_as_cpu_tensors(tmp_path):
    result = fit(write_dataset(tmp_path), small_config())

    model = models.resnet18(weights=None, num_classes=3)
    model.load_state_dict(result.state_dict)
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    assert result.device in ("cpu", "cuda")


def test_it_reports_every_batch(tmp_path):
    calls = []

    fit(write_dataset(tmp_path), small_config(epochs=2), on_batch=lambda *a: calls.append(a))

    # 24 training images in batches of 8.
    assert calls == [(e, b, 3) for e in (1, 2) for b in (1, 2, 3)]


def test_it_stops_when_asked_to(tmp_path):
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) == 2

    with pytest.raises(TrainingCancelled):
        fit(write_dataset(tmp_path), small_config(epochs=3), should_stop=should_stop)
    assert len(asked) == 2


def test_it_trains_the_same_way_twice_with_the_same_seed(tmp_path):
    data_dir = write_dataset(tmp_path)

    first = fit(data_dir, small_config(seed=3))
    second = fit(data_dir, small_config(seed=3))

    assert first.history[0].loss == second.history[0].loss
    assert torch.equal(first.state_dict["fc.weight"], second.state_dict["fc.weight"])


def test_it_keeps_the_last_epoch_when_there_is_no_validation_data(tmp_path):
    data_dir = write_dataset(tmp_path, val_per_class=0)

    result = fit(data_dir, small_config(epochs=2))

    assert result.best_val_accuracy is None
    assert result.best_epoch == 2
    assert [s.val_accuracy for s in result.history] == [None, None]
    assert result.calibration["thresholds"] is None
    assert "no validation photos" in result.calibration["note"]


def test_it_calibrates_unknown_thresholds_on_the_validation_photos(tmp_path):
    result = fit(write_dataset(tmp_path), small_config())

    calibration = result.calibration
    thresholds = calibration["thresholds"]
    assert thresholds["strict"] >= thresholds["normal"] >= thresholds["lenient"]
    assert calibration["centroids"].shape == (3, 512)
    assert calibration["val_images"] == 12
    assert calibration["temperature"] > 0


def test_it_leaves_frozen_layers_and_their_statistics_untouched(tmp_path):
    torch.manual_seed(5)
    weights = models.resnet18(weights=None).state_dict()
    torch.save(weights, tmp_path / "weights.pth")
    config = small_config(pretrained=str(tmp_path / "weights.pth"), fine_tune_from="layer4")

    result = fit(write_dataset(tmp_path / "data"), config)

    for key in ("conv1.weight", "bn1.running_mean", "layer3.1.bn2.running_var"):
        assert torch.equal(result.state_dict[key], weights[key])
    key = "layer4.1.bn2.running_var"
    assert not torch.equal(result.state_dict[key], weights[key])


def test_it_loads_grayscale_images_as_three_channels(tmp_path):
    write_dataset(tmp_path, mode="L")

    train_batches, val_batches, classes = load_data(tmp_path, 64, 4, seed=0)

    pixels, labels = next(iter(train_batches))
    assert pixels.shape == (4, 3, 64, 64)
    assert len(val_batches.labels) == 12


def test_it_accepts_a_validation_folder_lacking_some_classes(tmp_path):
    write_dataset(tmp_path, val_per_class=0)
    (tmp_path / "val" / "green").rmdir()
    write_dataset(tmp_path / "extra", train_per_class=0, val_per_class=2)
    for image in (tmp_path / "extra" / "val" / "red").iterdir():
        image.rename(tmp_path / "val" / "red" / image.name)

    _, val_batches, classes = load_data(tmp_path, 64, 4, seed=0)

    assert set(val_batches.labels.tolist()) == {classes.index("red")}


def test_it_refuses_a_single_class(tmp_path):
    write_dataset(tmp_path, colours={"red": (255, 0, 0)})

    with pytest.raises(ValueError, match="at least 2 classes"):
        load_data(tmp_path, 64, 4, seed=0)


def test_it_names_a_class_without_training_images(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "train" / "nobody").mkdir()

    with pytest.raises(ValueError, match="no training image: nobody"):
        load_data(tmp_path, 64, 4, seed=0)


def test_it_refuses_validation_classes_unknown_to_training(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "val" / "purple").mkdir()

    with pytest.raises(ValueError, match="purple"):
        load_data(tmp_path, 64, 4, seed=0)


def test_it_names_an_image_it_cannot_decode(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")

    with pytest.raises(ValueError, match="broken.jpg"):
        load_data(tmp_path, 64, 4, seed=0)


@pytest.fixture
def random_weights(tmp_path):
    """A resnet18 state dict to fine-tune from, as a pretrained weights file."""
    torch.manual_seed(5)
    path = tmp_path / "weights.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)
    return str(path)


def test_frozen_features_give_the_plain_forward_pass_and_gradients(random_weights):
    model = build_model("resnet18", 3, random_weights, "layer4")
    set_train_mode(model)
    images = torch.randn(4, 3, 64, 64)
    labels = torch.tensor([0, 1, 2, 0])

    plain_loss = nn.functional.cross_entropy(model(images), labels)
    plain_grads = torch.autograd.grad(plain_loss, [model.layer4[0].conv1.weight])
    with torch.no_grad():
        features = frozen_features(model, images, "layer4")
    _, logits = embed_and_classify(model, features, "layer4")
    cached_loss = nn.functional.cross_entropy(logits, labels)
    cached_grads = torch.autograd.grad(cached_loss, [model.layer4[0].conv1.weight])

    torch.testing.assert_close(cached_loss, plain_loss)
    torch.testing.assert_close(cached_grads, plain_grads)


@pytest.mark.parametrize("fine_tune_from", ["layer4", "fc"])
def test_training_on_cached_frozen_features_matches_recomputing_them(
    tmp_path, random_weights, fine_tune_from
):
    data_dir = write_dataset(tmp_path / "data")
    config = small_config(
        epochs=2,
        pretrained=random_weights,
        fine_tune_from=fine_tune_from,
        augmentation="none",
        precision="fp32",
    )

    plain = fit(data_dir, dataclasses.replace(config, cached_views=0))
    cached = fit(data_dir, config)

    assert (plain.cached_views, cached.cached_views) == (0, 1)
    for plain_epoch, cached_epoch in zip(plain.history, cached.history, strict=True):
        assert cached_epoch.loss == pytest.approx(plain_epoch.loss, rel=1e-4)
        assert cached_epoch.train_accuracy == plain_epoch.train_accuracy
        assert cached_epoch.val_accuracy == plain_epoch.val_accuracy
    torch.testing.assert_close(
        cached.state_dict["fc.weight"], plain.state_dict["fc.weight"], atol=1e-4, rtol=1e-3
    )
    torch.testing.assert_close(
        cached.calibration["centroids"], plain.calibration["centroids"], atol=1e-3, rtol=1e-3
    )


def test_it_caches_several_augmented_views_when_fine_tuning_deeper_layers(random_weights, tmp_path):
    data_dir = write_dataset(tmp_path / "data")

    layer4 = fit(data_dir, small_config(pretrained=random_weights, fine_tune_from="layer4"))
    everything = fit(data_dir, small_config(pretrained=random_weights, fine_tune_from="all"))

    assert layer4.cached_views == TrainConfig(architecture="resnet18").cached_views
    assert everything.cached_views == 0


def test_it_keeps_fewer_views_when_the_cache_would_not_fit(monkeypatch, random_weights, tmp_path):
    # 24 training and 12 validation images; a layer4 feature map at 64 px is 256x4x4 floats.
    monkeypatch.setattr(feature_cache, "MAX_CACHE_BYTES", (24 * 2 + 12) * 256 * 16 * 4)
    config = small_config(pretrained=random_weights, fine_tune_from="layer4", precision="fp32")

    result = fit(write_dataset(tmp_path / "data"), config)

    assert result.cached_views == 2


def test_it_stops_early_when_validation_accuracy_stops_rising(random_weights, tmp_path):
    # A learning rate so small that nothing changes: accuracy is flat from epoch 1 on.
    config = small_config(
        epochs=10,
        pretrained=random_weights,
        fine_tune_from="fc",
        learning_rate=1e-12,
        early_stopping_patience=2,
    )

    result = fit(write_dataset(tmp_path / "data"), config)

    assert [s.epoch for s in result.history] == [1, 2, 3]
    assert result.stopped_early
    assert result.best_val_accuracy == max(s.val_accuracy for s in result.history)


def test_it_trains_every_epoch_while_validation_accuracy_rises_or_without_patience(tmp_path):
    data_dir = write_dataset(tmp_path)

    patient = fit(data_dir, small_config(epochs=3, early_stopping_patience=5))
    no_early_stop = fit(data_dir, small_config(epochs=3))

    assert len(patient.history) == len(no_early_stop.history) == 3
    assert not patient.stopped_early


def face_config(**overrides):
    """The default face network, small batches, on the fast path."""
    return TrainConfig(**{"batch_size": 8, "seed": 0, "epochs": 2, **overrides})


def test_the_class_means_head_trains_nothing_and_keeps_every_photos_mean(tmp_path):
    data_dir = write_dataset(tmp_path)

    result = fit(data_dir, face_config(head="class_means"))

    assert len(result.history) == 1 and result.best_val_accuracy == 1.0
    assert result.calibration["method"] == "margin" and result.calibration["thresholds"]
    # The head: every enrolled photo's mean, compared after whitening; the "unknown"
    # score's centroids stay the plain means.
    whitening = result.state_dict["fc.whitening"]
    assert whitening.shape == (128, 128) and torch.allclose(whitening, whitening.T, atol=1e-5)
    model = build_model("dlib-face-resnet", 3, "none", "fc", "class_means")
    model.load_state_dict(result.state_dict)
    centroids = result.calibration["centroids"]
    assert torch.allclose(model.fc.directions(centroids), result.state_dict["fc.weight"], atol=0.05)


def test_the_face_network_stays_frozen_when_its_cosine_head_trains(tmp_path):
    from training.ml.backbones.dlib_face_resnet import (
        DlibFaceResNet,
        load_dlib_weights,
        weights_path,
    )

    data_dir = write_dataset(tmp_path)
    original = DlibFaceResNet()
    load_dlib_weights(original, weights_path())

    result = fit(data_dir, face_config(head="cosine"))

    assert len(result.history) == 2
    assert torch.equal(result.state_dict["stage5.0.conv1.weight"], original.stage5[0].conv1.weight)
    assert result.cached_views == 1  # mirror-averaged embeddings, computed once
