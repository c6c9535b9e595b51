"""Training parameters, validated on construction.

Imports nothing heavy, so Django forms and views can validate a job's parameters without
loading torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Must match the builders in model.py (kept here so validation needs no torch import).
ARCHITECTURES = ("resnet18", "resnet34", "resnet50")
# Ordered from "train least" to "train everything".
FINE_TUNE_CHOICES = ("fc", "layer4", "layer3", "all", "auto")
AUGMENTATIONS = ("none", "light")
MIN_IMAGE_SIZE = 64  # below this layer4 sees 1x1 maps and BatchNorm fails on a batch of one
MAX_IMAGE_SIZE = 1024


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training job, with the defaults faceweb uses.

    Raises ValueError on construction when a value is out of range, so a bad job is refused
    before any work starts.
    """

    architecture: str = "resnet18"
    fine_tune_from: str = "auto"
    epochs: int = 15
    learning_rate: float = 3e-4
    batch_size: int = 32
    image_size: int = 224
    augmentation: str = "light"
    seed: int = 0
    pretrained: str = "imagenet"

    def __post_init__(self):
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("fine_tune_from", self.fine_tune_from, FINE_TUNE_CHOICES)
        _check_choice("augmentation", self.augmentation, AUGMENTATIONS)
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        self.learning_rate = _checked_learning_rate(self.learning_rate)
        if not isinstance(self.pretrained, str) or not self.pretrained.strip():
            raise ValueError(
                "pretrained must be 'imagenet', 'none' or a path to a state dict, "
                f"got {self.pretrained!r}"
            )

    def resolved_fine_tune_from(self) -> str:
        """The layer training starts from, with "auto" replaced by a concrete choice.

        "auto" means layer4 when starting from pretrained weights (the recipe's "fine-tune
        the deeper layers") and all layers from random weights, since frozen random layers
        would only add noise.
        """
        if self.fine_tune_from != "auto":
            return self.fine_tune_from
        return "all" if self.pretrained == "none" else "layer4"

    def to_dict(self) -> dict:
        """The parameters as a plain JSON-able dict (the inverse of from_dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build a config from a dict; missing keys take their defaults.

        Raises ValueError naming any unknown key (a typo must not silently fall back to a
        default) and for any invalid value.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"unknown training parameter(s): {', '.join(map(str, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**d)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_int(name, value, low, high):
    # bool is an int subclass; True as an epoch count is a bug, not a 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _checked_learning_rate(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"learning_rate must be a number, got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"learning_rate must be greater than 0 and at most 1, got {value}")
    return float(value)
