import numpy as np
import pytest
import torch
from torchvision import models

from training.ml.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)
from training.ml.config import IMAGENET_MEAN, IMAGENET_STD, TrainConfig


def checkpoint_fields(**overrides):
    torch.manual_seed(0)
    fields = dict(
        architecture="resnet18",
        state_dict=models.resnet18(weights=None, num_classes=3).state_dict(),
        classes=[{"id": 4, "name": "Ada"}, {"id": 9, "name": "Grace"}, "Linus"],
        image_size=64,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        metrics={"accuracy": 0.75, "per_class": [{"precision": 1.0, "recall": None}]},
        calibration={"temperature": 1.5, "unknown_threshold": 0.4},
        config=TrainConfig(architecture="resnet18", pretrained="none").to_dict(),
    )
    return {**fields, **overrides}


@pytest.fixture
def saved(tmp_path):
    fields = checkpoint_fields()
    path = tmp_path / "models" / "model.pt"
    sha256 = save_checkpoint(path, **fields)
    return path, sha256, fields


def test_it_round_trips_a_checkpoint_through_weights_only_loading(saved):
    path, sha256, fields = saved

    checkpoint = load_checkpoint(path, expected_sha256=sha256)

    assert checkpoint["format_version"] == FORMAT_VERSION
    assert checkpoint["classes"] == fields["classes"]
    assert checkpoint["metrics"] == fields["metrics"]
    assert checkpoint["calibration"] == fields["calibration"]
    assert TrainConfig.from_dict(checkpoint["config"]) == TrainConfig(
        architecture="resnet18", pretrained="none"
    )
    assert checkpoint["mean"] == pytest.approx(list(IMAGENET_MEAN))
    for key, tensor in fields["state_dict"].items():
        assert torch.equal(checkpoint["state_dict"][key], tensor)
    # Readable by anyone with plain torch, no faceweb code needed.
    assert torch.load(path, weights_only=True)["architecture"] == "resnet18"


def test_it_round_trips_a_calibration_holding_tensors(tmp_path):
    calibration = {
        "method": "centroid",
        "thresholds": {"strict": 0.6, "normal": 0.5, "lenient": 0.4},
        "centroids": torch.randn(3, 512),
    }
    path = tmp_path / "model.pt"

    save_checkpoint(path, **checkpoint_fields(calibration=calibration))

    loaded = load_checkpoint(path)["calibration"]
    assert loaded["thresholds"] == calibration["thresholds"]
    assert torch.equal(loaded["centroids"], calibration["centroids"])


def test_it_returns_the_sha256_of_the_written_file(saved):
    path, sha256, _ = saved

    assert sha256 == file_sha256(path)
    assert len(sha256) == 64


def test_it_leaves_no_temporary_file_behind(saved):
    path, _, _ = saved

    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_it_replaces_an_existing_checkpoint(saved):
    path, first_sha256, fields = saved

    second_sha256 = save_checkpoint(path, **{**fields, "image_size": 96})

    assert second_sha256 != first_sha256
    assert load_checkpoint(path, second_sha256)["image_size"] == 96
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_it_refuses_values_weights_only_loading_could_not_read(tmp_path):
    fields = checkpoint_fields(metrics={"accuracy": np.float64(0.5)})

    with pytest.raises(TypeError, match=r"metrics\['accuracy'\] is a numpy.float64"):
        save_checkpoint(tmp_path / "model.pt", **fields)
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_a_tampered_checkpoint(saved):
    path, sha256, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path, expected_sha256=sha256)


def test_it_refuses_a_truncated_checkpoint(saved):
    path, _, _ = saved
    path.write_bytes(path.read_bytes()[:5000])

    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_it_refuses_a_garbage_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"GIF89a this is not a model at all")

    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_it_refuses_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "gone.pt")


def test_it_refuses_a_pickle_that_is_not_only_weights(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format_version": FORMAT_VERSION, "payload": np.arange(3)}, path)

    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_it_refuses_another_format_version(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format_version": 99, "state_dict": {}}, path)

    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(path)


def test_it_refuses_a_file_that_is_no_faceweb_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)

    with pytest.raises(CheckpointError, match="not a faceweb checkpoint"):
        load_checkpoint(path)
