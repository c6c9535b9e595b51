"""torchvision's ResNet18/34/50 with a new last layer: the recipe faceweb grew from."""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

from training.ml.model import PretrainedWeightsError, load_matching_weights, read_state_dict_file

_BUILDERS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
}

# The forward pass of a torchvision ResNet in steps, input to output; the last gives the
# embedding (the fc layer's input).
STEPS = ("stem", "layer1", "layer2", "layer3", "layer4", "pool")
FIRST_TRAINED_STEP = {"all": 0, "layer3": 3, "layer4": 4, "fc": 6}
STAGE_MODULES = {
    "stem": ("conv1", "bn1"),
    "layer1": ("layer1",),
    "layer2": ("layer2",),
    "layer3": ("layer3",),
    "layer4": ("layer4",),
    "fc": ("fc",),
}


def build(architecture: str, num_classes: int, pretrained: str, head: str = "linear") -> nn.Module:
    """A torchvision ResNet with fc replaced by a new layer for num_classes.

    pretrained: "imagenet" (torchvision's weights, downloaded into TORCH_HOME on first
    use), "none" (random init) or a path to a state dict. Raises PretrainedWeightsError
    when the weights cannot be had: never falls back to random weights.
    """
    from training.ml.model import make_head

    builder, imagenet_weights = _BUILDERS[architecture]
    model = builder(weights=None)
    if pretrained == "imagenet":
        weights = _download_imagenet_weights(imagenet_weights)
        load_matching_weights(model, weights, "ImageNet weights", skip_prefix="fc.")
    elif pretrained != "none":
        load_matching_weights(model, read_state_dict_file(pretrained), pretrained, "fc.")
    model.fc = make_head(head, model.fc.in_features, num_classes)
    return model


def run_step(model, step, x):
    if step == "stem":
        return model.maxpool(model.relu(model.bn1(model.conv1(x))))
    if step == "pool":
        return torch.flatten(model.avgpool(x), 1)
    return getattr(model, step)(x)


def _download_imagenet_weights(weights) -> dict:
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # the download can fail in many ways; all need the same advice
        import os

        file_name = os.path.basename(weights.url)
        checkpoints = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise PretrainedWeightsError(
            f"Could not get the ImageNet weights {file_name} ({type(exc).__name__}: {exc}). "
            f"To fix it, do one of: let this worker reach download.pytorch.org once "
            f"(they are then cached); put the file {file_name} (from {weights.url}) into "
            f"{checkpoints}; set FACEWEB_PRETRAINED to the path of a local state dict; or "
            f"set FACEWEB_PRETRAINED=none to train from random weights."
        ) from exc
