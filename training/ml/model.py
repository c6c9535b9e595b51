"""The classifier: a torchvision ResNet with a new last layer, partly frozen."""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn
from torchvision import models

from training.ml.config import ARCHITECTURES

# name -> (builder, ImageNet weights). Adding an architecture is one line here and one in
# config.ARCHITECTURES.
BUILDERS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
}
assert set(BUILDERS) == set(ARCHITECTURES), "config.ARCHITECTURES is out of date"

# Top-level children of a torchvision ResNet, input to output.
_STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")


class PretrainedWeightsError(Exception):
    """The requested pretrained weights cannot be loaded; the message says what to do."""


def build_model(
    architecture: str, num_classes: int, pretrained: str, fine_tune_from: str
) -> nn.Module:
    """Build a ResNet classifier for num_classes identities.

    pretrained: "imagenet" (torchvision's weights, downloaded into TORCH_HOME on first
    use), "none" (random init) or a path to a state dict. fine_tune_from: "fc", "layer4",
    "layer3" or "all" (resolve "auto" with TrainConfig.resolved_fine_tune_from first);
    the parameters of every stage before it get requires_grad=False.

    Raises PretrainedWeightsError when the weights cannot be had: it never falls back to
    random weights. May download into TORCH_HOME; otherwise no side effects.
    """
    if architecture not in BUILDERS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(BUILDERS)}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    builder, imagenet_weights = BUILDERS[architecture]
    model = builder(weights=None)
    if pretrained == "imagenet":
        _load_backbone(model, _download_imagenet_weights(imagenet_weights), "ImageNet weights")
    elif pretrained != "none":
        _load_backbone(model, _read_state_dict_file(pretrained), pretrained)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    freeze_before(model, fine_tune_from)
    return model


def freeze_before(model: nn.Module, fine_tune_from: str) -> None:
    """Set requires_grad=False on every stage before fine_tune_from, True on the rest."""
    if fine_tune_from == "all":
        first_trained = 0
    elif fine_tune_from in _STAGES:
        first_trained = _STAGES.index(fine_tune_from)
    else:
        raise ValueError(
            f"fine_tune_from must be fc, layer4, layer3 or all, got {fine_tune_from!r}"
        )
    for index, stage in enumerate(_STAGES):
        for parameter in getattr(model, stage).parameters():
            parameter.requires_grad = index >= first_trained


def set_train_mode(model: nn.Module) -> None:
    """Put the model in training mode, except BatchNorm layers whose parameters are frozen.

    Frozen layers must also keep their running statistics: in training mode BatchNorm
    would keep updating them from our few face photos and undo the pretrained features.
    """
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            parameter.requires_grad for parameter in module.parameters()
        ):
            module.eval()


# The forward pass of a torchvision ResNet in steps, input to output. A model fine-tuned
# from a stage runs the steps from _FIRST_TRAINED_STEP[stage] with gradients and the ones
# before it frozen: those can be computed once per image (see frozen_features).
_FORWARD_STEPS = ("stem", "layer1", "layer2", "layer3", "layer4", "pool")
_FIRST_TRAINED_STEP = {"all": 0, "layer3": 3, "layer4": 4, "fc": 6}
# The stages whose frozen prefix frozen_features can compute ("all" has none).
CACHEABLE_STAGES = ("fc", "layer4", "layer3")


def embed_and_classify(model: nn.Module, inputs: torch.Tensor, fine_tune_from: str = "all"):
    """Run a torchvision ResNet on a batch; returns (embeddings, logits).

    inputs are images, or with fine_tune_from "layer3", "layer4" or "fc" what
    frozen_features(model, images, fine_tune_from) made of them: the result is the same.
    embeddings are the fc layer's inputs (512 values per image for resnet18/34): what
    the model has learnt a face looks like, used to tell known faces from unknown ones.
    Same cost as model(images): fc is applied to the embeddings, not run separately.
    """
    embeddings = _run_steps(model, inputs, _FORWARD_STEPS[_FIRST_TRAINED_STEP[fine_tune_from] :])
    return embeddings, model.fc(embeddings)


def frozen_features(model: nn.Module, images: torch.Tensor, fine_tune_from: str):
    """The outputs of the stages before fine_tune_from ("layer3", "layer4" or "fc").

    For "fc" these are the embeddings. Call it in eval mode: frozen BatchNorm layers use
    their running statistics in training too (see set_train_mode), so the features are
    then the same as the ones training would compute, and can be computed once.
    """
    if fine_tune_from not in CACHEABLE_STAGES:
        raise ValueError(f"fine_tune_from must be one of {', '.join(CACHEABLE_STAGES)}")
    return _run_steps(model, images, _FORWARD_STEPS[: _FIRST_TRAINED_STEP[fine_tune_from]])


def _run_steps(model, x, steps):
    for step in steps:
        if step == "stem":
            x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        elif step == "pool":
            x = torch.flatten(model.avgpool(x), 1)
        else:
            x = getattr(model, step)(x)
    return x


def to_model_input(batch: torch.Tensor, device) -> torch.Tensor:
    """batch on device; image and feature-map batches in channels_last, which lets oneDNN
    (CPU) and cuDNN pick their fastest convolutions."""
    batch = batch.to(device, non_blocking=True)
    if batch.ndim == 4:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for dtype on device; None means plain float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def pick_device() -> torch.device:
    """The device to train on: the first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _download_imagenet_weights(weights) -> dict:
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # the download can fail in many ways; all need the same advice
        file_name = os.path.basename(weights.url)
        checkpoints = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise PretrainedWeightsError(
            f"Could not get the ImageNet weights {file_name} ({type(exc).__name__}: {exc}). "
            f"To fix it, do one of: let this worker reach download.pytorch.org once "
            f"(they are then cached); put the file {file_name} (from {weights.url}) into "
            f"{checkpoints}; set FACEWEB_PRETRAINED to the path of a local state dict; or "
            f"set FACEWEB_PRETRAINED=none to train from random weights."
        ) from exc


def _read_state_dict_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise PretrainedWeightsError(
            f"Pretrained weights file {path} does not exist. Set FACEWEB_PRETRAINED to an "
            f"existing state-dict file, to 'imagenet', or to 'none' for random weights."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load has no single error type for a bad file
        raise PretrainedWeightsError(
            f"Pretrained weights file {path} is not a readable state dict: {exc}"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict):
        raise PretrainedWeightsError(f"Pretrained weights file {path} holds no state dict.")
    return loaded


def _load_backbone(model: nn.Module, state_dict: dict, source: str) -> None:
    # fc is sized for another set of classes and is replaced anyway; every other weight
    # must match, or we would be training a half-random network without knowing it.
    backbone = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(expected) - set(backbone))
    unexpected = sorted(set(backbone) - set(expected))
    mismatched = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in backbone.items()
        if k in expected and getattr(v, "shape", None) != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected {_first(unexpected)}")
    if mismatched:
        problems.append(f"wrong shape {_first(mismatched)}")
    if problems:
        raise PretrainedWeightsError(
            f"{source} does not fit the model's backbone: {'; '.join(problems)}"
        )
    model.load_state_dict(backbone, strict=False)


def _first(items: list, shown: int = 5) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
