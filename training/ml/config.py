"""Training parameters, validated on construction.

Imports nothing heavy, so Django forms and views can validate a job's parameters without
loading torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from training.ml.backbones import (
    DEFAULT_BACKBONE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    REGISTRY,
    get_backbone,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TrainConfig"]

ARCHITECTURES = tuple(REGISTRY)
# Every backbone's stages, ordered from "train least" to "train everything"; which ones a
# backbone accepts is in its registry entry.
FINE_TUNE_CHOICES = tuple(
    dict.fromkeys(stage for backbone in REGISTRY.values() for stage in reversed(backbone.stages))
) + ("all", "auto")
# "auto": the backbone's default (see Backbone and TrainConfig.__post_init__).
AUGMENTATIONS = ("none", "light", "strong", "auto")
HEADS = ("class_means", "cosine", "linear", "auto")
OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("onecycle", "constant")
PRECISIONS = ("auto", "bf16", "fp32")
UNKNOWN_SCORES = ("margin", "centroid", "softmax", "auto")
MIN_IMAGE_SIZE = 64  # below this layer4 sees 1x1 maps and BatchNorm fails on a batch of one
MAX_IMAGE_SIZE = 1024


def _param(default, help, **facts):
    """A TrainConfig field with what the Training page, the API and `manage.py train` say
    and check of it (training.parameters builds all three from these): help, and either
    choices or min and max (min_exclusive / max_exclusive: that end is not allowed; zero:
    what 0 means, when 0 is allowed besides the range)."""
    return field(default=default, metadata={"help": help, **facts})


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training job, with the defaults faceweb uses.

    Raises ValueError on construction when a value is out of range, so a bad job is refused
    before any work starts.
    """

    # The face network is the default: trained on millions of faces, it names known people
    # and refuses strangers far better than any network trained on a team's few photos
    # (figures in the README, from bench/accuracy.py). "auto" fields take the backbone's
    # measured defaults (training.ml.backbones); a ResNet18 from random weights at 112 px,
    # one-cycle AdamW and strong augmentation reached ~90% top-1 on lfw_dev in 40 epochs.
    architecture: str = _param(
        DEFAULT_BACKBONE,
        "The network: dlib-face-resnet (the default, trained on faces) or a ResNet from ImageNet.",
        choices=ARCHITECTURES,
    )
    fine_tune_from: str = _param(
        "auto",
        "Where training starts: a stage of the chosen network, all, or auto (the final "
        "layer of the face network; layer4 of a ResNet from pretrained weights, every layer "
        "from random ones).",
        choices=FINE_TUNE_CHOICES,
    )
    # 1,000 and 512: a typo guard well above anything measured (40 epochs, batches of 32).
    epochs: int = _param(40, "Passes over the training photos.", min=1, max=1000)
    # The peak learning rate of the one-cycle schedule, or the rate of a constant one.
    learning_rate: float = _param(
        2e-3,
        "The peak rate of the one-cycle schedule (the rate of a constant one).",
        min=0,
        max=1,
        min_exclusive=True,
    )
    batch_size: int = _param(32, "Photos per training step.", min=1, max=512)
    # 0: the backbone's size.
    image_size: int = _param(
        0,
        "Network input, in pixels; 0: the network's own (150 for the face network, which "
        "takes no other).",
        min=MIN_IMAGE_SIZE,
        max=MAX_IMAGE_SIZE,
        zero="the network's own size",
    )
    augmentation: str = _param(
        "auto",
        "light: flips, small turns and shifts; strong: also colour changes and hidden "
        "patches; auto: the network's.",
        choices=AUGMENTATIONS,
    )
    seed: int = _param(
        0, "Seeds the new layers' weights, the order of photos and augmentation.",
        min=0, max=2**32 - 1,
    )  # fmt: skip
    # "auto": the backbone's own weights ("face" for the face network, "imagenet" for the
    # ResNets); "none": random weights; or a path to a state dict.
    pretrained: str = _param(
        "auto", "auto (the network's own weights), none (random weights) or a state dict."
    )
    # The new last layer: "class_means" (each person's mean embedding, nothing trained),
    # "cosine" (normalised, trained from each person's mean embedding) or "linear" (the
    # recipe's); "auto": the backbone's.
    head: str = _param(
        "auto",
        "The new last layer: class_means (each person's mean face, nothing to train), "
        "cosine (trained from the mean faces) or linear; auto: the network's.",
        choices=HEADS,
    )
    optimizer: str = _param("adamw", "adamw or adam.", choices=OPTIMIZERS)
    schedule: str = _param(
        "onecycle", "onecycle (warm up, then anneal) or constant.", choices=SCHEDULES
    )
    weight_decay: float = _param(0.05, "The optimizer's weight decay.", min=0.0, max=1.0)
    # Smoothing of 1 would make every target uniform: nothing left to learn.
    label_smoothing: float = _param(
        0.1, "The share of each target spread over the other people.", min=0.0, max=0.5
    )
    # "auto": bfloat16 autocast where the hardware runs it natively (CUDA, CPUs with
    # AVX512-BF16 or AMX), float32 elsewhere, where emulated bf16 would only be slower.
    precision: str = _param(
        "auto",
        "auto: bfloat16 where the hardware runs it natively, float32 elsewhere.",
        choices=PRECISIONS,
    )
    # How a face is scored against the "unknown" threshold; see training.ml.calibrate.
    # "auto": "margin" for the face network, "centroid" for the ResNets (which told
    # held-back people from known ones better than "softmax" on every seed measured).
    unknown_score: str = _param(
        "auto",
        "How a face is scored against the unknown threshold; auto: margin for the face "
        "network, centroid for a ResNet.",
        choices=UNKNOWN_SCORES,
    )
    # Stop once validation accuracy has not risen for this many epochs; 0 never stops
    # early. The weights of the best epoch are kept either way.
    early_stopping_patience: int = _param(
        0,
        "Stop after this many epochs without a better validation accuracy (0: never).",
        min=0,
        max=1000,
    )
    # When only layer3 and later are trained, the frozen layers before them run once on
    # this many augmented views of each training photo instead of in every epoch, and each
    # epoch trains on one of the views (training.ml.feature_cache). 0 recomputes them in
    # every epoch, with fresh augmentation each time. Fine-tuning layer4 of a backbone
    # trained on att_faces to lfw_dev face crops (112 px, 40 epochs, seeds 0 and 1), best
    # val accuracy was 88/87% recomputing, 88/85% with 16 views, 85/82% with 8, 82/80%
    # with 4, 70% with 1; the run took 42 s with 16 views against 55 s recomputing.
    cached_views: int = _param(
        16,
        "With frozen layers: augmented views of each photo computed once (0: none, every "
        "epoch recomputes them).",
        min=0,
        max=64,
    )

    def __post_init__(self):
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        backbone = get_backbone(self.architecture)
        _check_choice("fine_tune_from", self.fine_tune_from, (*backbone.stages, "all", "auto"))
        _check_choice("augmentation", self.augmentation, AUGMENTATIONS)
        _check_choice("head", self.head, HEADS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("unknown_score", self.unknown_score, UNKNOWN_SCORES)
        for name in ("epochs", "batch_size", "seed", "early_stopping_patience", "cached_views"):
            _check_int(name, getattr(self, name), *limits(name))
        if self.image_size != 0:
            _check_int("image_size", self.image_size, *limits("image_size"))
        self.learning_rate = _checked_learning_rate(self.learning_rate)
        for name in ("weight_decay", "label_smoothing"):
            setattr(self, name, _checked_fraction(name, getattr(self, name), *limits(name)))
        if not isinstance(self.pretrained, str) or not self.pretrained.strip():
            raise ValueError(
                f"pretrained must be one of {', '.join(backbone.pretrained_choices)}, 'auto' "
                f"or a path to a state dict, got {self.pretrained!r}"
            )
        self._auto_values(backbone)  # validates what "auto" and the sizes resolve to

    def resolved(self) -> TrainConfig:
        """A copy with every "auto" field (but fine_tune_from, see resolved_fine_tune_from)
        and image_size 0 replaced by the backbone's value: what training really uses."""
        return dataclasses.replace(self, **self._auto_values(get_backbone(self.architecture)))

    def _auto_values(self, backbone) -> dict:
        values = {}
        image_size = self.image_size or backbone.image_size
        if backbone.fixed_size and image_size != backbone.image_size:
            raise ValueError(
                f"{backbone.name} takes {backbone.image_size} px faces only, "
                f"got image_size {self.image_size}"
            )
        values["image_size"] = image_size
        pretrained = backbone.default_pretrained if self.pretrained == "auto" else self.pretrained
        if pretrained in {"face", "imagenet"} - set(backbone.pretrained_choices):
            raise ValueError(
                f"{backbone.name} cannot start from {pretrained!r} weights; "
                f"choose {', '.join(backbone.pretrained_choices)} or a state-dict path"
            )
        values["pretrained"] = pretrained
        for name in ("augmentation", "unknown_score"):
            value = getattr(self, name)
            values[name] = backbone.defaults[name] if value == "auto" else value
        values["head"] = self._resolved_head(backbone)
        if values["head"] == "class_means" and self.resolved_fine_tune_from() != "fc":
            raise ValueError(
                "the class_means head trains nothing, so fine_tune_from must be fc or auto"
            )
        return values

    def _resolved_head(self, backbone) -> str:
        if self.head != "auto":
            return self.head
        head = backbone.defaults["head"]
        # Mean faces of a random network mean nothing: from random weights, train a head.
        if head == "class_means" and self.pretrained == "none":
            return "cosine"
        return head

    def resolved_fine_tune_from(self) -> str:
        """The layer training starts from, with "auto" replaced by a concrete choice.

        "auto" means the backbone's default when starting from pretrained weights (layer4
        for the ResNets, the recipe's "fine-tune the deeper layers"; the head alone for the
        face network, measured best) and all layers from random weights, since frozen
        random layers would only add noise.
        """
        if self.fine_tune_from != "auto":
            return self.fine_tune_from
        if self._resolved_head(get_backbone(self.architecture)) == "class_means":
            return "fc"
        if self.pretrained == "none":
            return "all"
        return get_backbone(self.architecture).default_fine_tune_from

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


def limits(name) -> tuple:
    """(min, max) of a numeric TrainConfig field, as its metadata states them."""
    metadata = TrainConfig.__dataclass_fields__[name].metadata
    return metadata["min"], metadata["max"]


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
    low, high = limits("learning_rate")  # the low end is not allowed (min_exclusive)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"learning_rate must be a number, got {value!r}")
    if not low < value <= high:
        raise ValueError(
            f"learning_rate must be greater than {low} and at most {high}, got {value}"
        )
    return float(value)


def _checked_fraction(name, value, low, high) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    # Written so that NaN fails too.
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return float(value)
