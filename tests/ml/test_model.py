from urllib.error import URLError

import pytest
import torch
from torchvision import models

from training.ml import config
from training.ml.backbones import REGISTRY
from training.ml.model import PretrainedWeightsError, build_model, set_train_mode


def trainable_stages(model):
    return {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}


@pytest.fixture
def imagenet_like_weights(tmp_path):
    """A resnet18 state dict with a 1000-class fc, as torchvision saves them."""
    torch.manual_seed(1)
    path = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)
    return path


def test_it_replaces_the_last_layer_with_one_output_per_class():
    model = build_model("resnet18", 7, "none", "all")

    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


def test_it_trains_only_layer4_and_fc_when_fine_tuning_from_layer4():
    model = build_model("resnet18", 3, "none", "layer4")

    assert trainable_stages(model) == {"layer4", "fc"}


def test_it_trains_only_fc_when_fine_tuning_from_fc():
    assert trainable_stages(build_model("resnet18", 3, "none", "fc")) == {"fc"}


def test_it_trains_every_layer_when_fine_tuning_all():
    model = build_model("resnet18", 3, "none", "all")

    assert all(p.requires_grad for p in model.parameters())


def test_auto_resolves_to_a_depth_build_model_accepts():
    fine_tune_from = config.TrainConfig(
        architecture="resnet18", pretrained="imagenet"
    ).resolved_fine_tune_from()

    assert trainable_stages(build_model("resnet18", 3, "none", fine_tune_from)) == {
        "layer4",
        "fc",
    }


def test_it_keeps_frozen_batchnorm_layers_in_eval_mode_while_training():
    model = build_model("resnet18", 3, "none", "layer4")

    set_train_mode(model)

    assert not model.bn1.training and not model.layer3[1].bn2.training
    assert model.layer4[0].bn1.training and model.fc.training


def test_every_registered_architecture_builds_a_classifier_with_its_stages():
    for name, backbone in REGISTRY.items():
        model = build_model(name, 3, "none", backbone.stages[-1])

        assert set(config.ARCHITECTURES) == set(REGISTRY)
        assert trainable_stages(model) == {"fc"}
        size = backbone.image_size
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 3)


def test_it_loads_the_backbone_from_a_state_dict_file(imagenet_like_weights):
    saved = torch.load(imagenet_like_weights, weights_only=True)

    model = build_model("resnet18", 3, str(imagenet_like_weights), "layer4")

    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, saved["layer4.1.bn2.running_var"])
    assert model.fc.out_features == 3


def test_it_accepts_a_state_dict_wrapped_under_a_model_key(tmp_path, imagenet_like_weights):
    saved = torch.load(imagenet_like_weights, weights_only=True)
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"model": saved, "epoch": 3}, wrapped)

    model = build_model("resnet18", 3, str(wrapped), "fc")

    assert torch.equal(model.conv1.weight, saved["conv1.weight"])


def test_it_refuses_weights_with_a_wrong_shape(tmp_path, imagenet_like_weights):
    saved = torch.load(imagenet_like_weights, weights_only=True)
    saved["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    path = tmp_path / "gray.pth"
    torch.save(saved, path)

    with pytest.raises(PretrainedWeightsError, match=r"wrong shape conv1\.weight"):
        build_model("resnet18", 3, str(path), "layer4")


def test_it_refuses_weights_of_another_architecture(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(models.resnet34(weights=None).state_dict(), path)

    with pytest.raises(PretrainedWeightsError, match=r"unexpected layer1\.2\."):
        build_model("resnet18", 3, str(path), "layer4")


def test_it_refuses_weights_missing_backbone_keys(tmp_path, imagenet_like_weights):
    saved = torch.load(imagenet_like_weights, weights_only=True)
    del saved["layer2.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(saved, path)

    with pytest.raises(PretrainedWeightsError, match=r"missing layer2\.0\.conv1\.weight"):
        build_model("resnet18", 3, str(path), "layer4")


def test_it_refuses_a_missing_weights_file(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        build_model("resnet18", 3, str(tmp_path / "nowhere.pth"), "layer4")


def test_it_refuses_a_weights_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights")

    with pytest.raises(PretrainedWeightsError, match="not a readable state dict"):
        build_model("resnet18", 3, str(path), "layer4")


def test_it_says_what_to_do_when_imagenet_weights_cannot_be_downloaded(tmp_path, monkeypatch):
    # The only mock in the ML tests: a download cannot run here.
    def unreachable(url, *args, **kwargs):
        raise URLError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)

    with pytest.raises(PretrainedWeightsError) as raised:
        build_model("resnet18", 3, "imagenet", "layer4")

    message = str(raised.value)
    assert "download.pytorch.org" in message
    assert "resnet18-f37072fd.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "FACEWEB_PRETRAINED=none" in message
    assert "network is unreachable" in message


def two_people_who_turn_their_heads():
    """Embeddings in 3-D: two people 0.2 apart along x; each photo also moved by a random
    amount along (1, 0, 1), the way one person's photos differ (pose), far more than the
    two people do. Returns (embeddings, labels) and a photo of person 0 turned far enough
    to lie nearer person 1's mean direction."""
    generator = torch.Generator().manual_seed(0)
    turn = torch.randn(40, 1, generator=generator) * 0.6
    labels = torch.arange(40) % 2
    people = torch.tensor([[0.1, 1.0, 0.0], [-0.1, 1.0, 0.0]])
    pose = torch.tensor([[1.0, 0.0, 1.0]]) / 2**0.5
    embeddings = people[labels] + turn * pose
    photo = people[:1] - 0.5 * pose
    return embeddings, labels, photo


def test_the_class_means_head_weighs_down_the_ways_one_persons_photos_differ():
    from training.ml.model import CosineHead

    embeddings, labels, photo = two_people_who_turn_their_heads()
    plain = CosineHead(3, 2)
    plain.init_from_class_means(embeddings, labels)

    def margin(head):  # how much more the turned photo looks like its own person
        logits = head(photo).detach()[0]
        return float(logits[0] - logits[1])

    margins = []
    for share in (0.1, 0.5, 0.9):
        whitened = CosineHead(3, 2)
        whitened.set_class_means(embeddings, labels, whitened_share=share)
        margins.append(margin(whitened))

    assert margin(plain) < 0  # named as the other person
    assert margin(plain) < margins[0] < margins[1] < margins[2]
    assert margins[2] > 0  # named right


def test_no_whitening_without_a_person_with_two_photos():
    from training.ml.model import within_person_whitening

    embeddings, _, _ = two_people_who_turn_their_heads()

    assert within_person_whitening(embeddings[:2], torch.tensor([0, 1]), share=0.1) is None
    assert within_person_whitening(embeddings, torch.arange(40) % 2, share=0) is None


def test_the_whitening_is_saved_with_the_head_and_older_heads_load_without_one():
    model = build_model("dlib-face-resnet", 2, "none", "fc", "class_means")
    embeddings, labels, photo = two_people_who_turn_their_heads()
    model.fc = type(model.fc)(3, 2)
    model.fc.set_class_means(embeddings, labels)
    saved = model.fc.state_dict()

    loaded = type(model.fc)(3, 2)
    loaded.load_state_dict(saved)
    older = type(model.fc)(3, 2)
    older.load_state_dict({"weight": saved["weight"]})

    assert torch.equal(loaded.whitening, model.fc.whitening)
    assert torch.equal(loaded(photo), model.fc(photo))
    assert older.whitening is None and "whitening" not in older.state_dict()
