import json

import pytest

from training.ml.config import TrainConfig


def test_its_default_is_the_face_network_frozen_with_a_cosine_head():
    config = TrainConfig().resolved()

    assert config.architecture == "dlib-face-resnet"
    assert (config.image_size, config.pretrained, config.head) == (150, "face", "class_means")
    assert (config.augmentation, config.unknown_score) == ("none", "margin")
    assert TrainConfig().resolved_fine_tune_from() == "fc"


def test_a_resnet_keeps_the_recipes_defaults():
    config = TrainConfig(architecture="resnet18").resolved()

    assert (config.epochs, config.batch_size, config.image_size) == (40, 32, 112)
    assert (config.optimizer, config.schedule, config.augmentation) == (
        "adamw",
        "onecycle",
        "strong",
    )
    assert (config.pretrained, config.head) == ("imagenet", "linear")
    assert config.resolved_fine_tune_from() == "layer4"


def test_auto_fields_stay_auto_until_resolved_so_a_new_architecture_gets_its_own():
    config = TrainConfig()

    assert (config.image_size, config.head, config.pretrained) == (0, "auto", "auto")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image_size": 112}, "takes 150 px faces only"),
        ({"pretrained": "imagenet"}, "cannot start from 'imagenet'"),
        ({"fine_tune_from": "layer4"}, "fine_tune_from must be one of"),
        ({"architecture": "resnet18", "pretrained": "face"}, "cannot start from 'face'"),
        ({"head": "mlp"}, "head must be one of"),
    ],
)
def test_it_refuses_what_the_chosen_network_cannot_take(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values)


def test_it_round_trips_through_json():
    config = TrainConfig(
        epochs=3,
        learning_rate=1e-3,
        architecture="resnet18",
        fine_tune_from="layer3",
        seed=7,
        schedule="constant",
        precision="fp32",
        weight_decay=0.01,
    )

    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_it_fills_missing_keys_with_defaults():
    assert TrainConfig.from_dict({"epochs": 2}) == TrainConfig(epochs=2)


def test_it_names_unknown_keys():
    with pytest.raises(ValueError, match="unknown training parameter.*epoch_count.*lr"):
        TrainConfig.from_dict({"epoch_count": 3, "lr": 0.1})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"architecture": "vgg16"}, "architecture must be one of"),
        ({"fine_tune_from": "layer2"}, "fine_tune_from must be one of"),
        ({"architecture": "resnet18", "image_size": 16}, "image_size must be between 64"),
        ({"augmentation": "heavy"}, "augmentation must be one of"),
        ({"epochs": 0}, "epochs must be between 1"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"batch_size": -1}, "batch_size must be between"),
        ({"image_size": 16}, "image_size must be between 64"),
        ({"learning_rate": 0}, "learning_rate must be greater than 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be greater than 0"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"seed": -1}, "seed must be between"),
        ({"pretrained": ""}, "pretrained must be"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"schedule": "cosine"}, "schedule must be one of"),
        ({"precision": "fp16"}, "precision must be one of"),
        ({"unknown_score": "distance"}, "unknown_score must be one of"),
        ({"weight_decay": -0.1}, "weight_decay must be between"),
        ({"label_smoothing": 0.9}, "label_smoothing must be between"),
        ({"label_smoothing": "some"}, "label_smoothing must be a number"),
    ],
)
def test_it_refuses_invalid_values_with_a_clear_message(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_it_accepts_an_integer_learning_rate_as_a_float():
    assert TrainConfig(learning_rate=1).learning_rate == 1.0


@pytest.mark.parametrize(
    ("pretrained", "fine_tune_from", "resolved"),
    [
        ("imagenet", "auto", "layer4"),
        ("/weights/resnet18.pth", "auto", "layer4"),
        ("none", "auto", "all"),
        ("none", "fc", "fc"),
        ("imagenet", "layer3", "layer3"),
    ],
)
def test_auto_fine_tunes_layer4_from_pretrained_weights_and_all_from_random(
    pretrained, fine_tune_from, resolved
):
    config = TrainConfig(
        architecture="resnet18", pretrained=pretrained, fine_tune_from=fine_tune_from
    )

    assert config.resolved_fine_tune_from() == resolved
