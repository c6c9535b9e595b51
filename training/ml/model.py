"""The classifier: a registered backbone (training.ml.backbones) with a new last layer,
partly frozen. Everything here works for any backbone through its module's STEPS,
run_step, FIRST_TRAINED_STEP and STAGE_MODULES."""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch import nn

from training.ml.backbones import get_backbone
from training.ml.config import HEADS


class PretrainedWeightsError(Exception):
    """The requested pretrained weights cannot be loaded; the message says what to do."""


def build_model(
    architecture: str,
    num_classes: int,
    pretrained: str,
    fine_tune_from: str,
    head: str = "linear",
) -> nn.Module:
    """Build a classifier for num_classes identities on the registered backbone.

    pretrained: one of the backbone's pretrained_choices ("face": the face network's
    weights shipped with faceweb; "imagenet": torchvision's, downloaded into TORCH_HOME on
    first use; "none": random init) or a path to a state dict. fine_tune_from: one of the
    backbone's stages or "all" (resolve "auto" with TrainConfig.resolved_fine_tune_from
    first); the parameters of every stage before it get requires_grad=False. head:
    "linear" or "cosine" (see CosineHead).

    Raises PretrainedWeightsError when the weights cannot be had: it never falls back to
    random weights. May download into TORCH_HOME; otherwise no side effects.
    """
    backbone = get_backbone(architecture)
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    model = backbone.implementation().build(architecture, num_classes, pretrained, head)
    # Plain attribute: which registered backbone this is, for the step functions below.
    model.architecture = architecture
    freeze_before(model, fine_tune_from)
    return model


def make_head(head: str, in_features: int, num_classes: int) -> nn.Module:
    """The new last layer: "linear" (the recipe's) or "cosine" (CosineHead; also the
    "class_means" head, whose weights are set, not trained)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    if head in ("cosine", "class_means"):
        return CosineHead(in_features, num_classes)
    return nn.Linear(in_features, num_classes)


# The class-means head compares faces after whitening away this share of the ways one
# person's photos differ (pose, light, expression), shrunk towards no whitening for the rest.
# Chosen on 10 seeds: lfw_dev top-1 0.988 -> 0.995 (16 photos a person), lfw_many with 3
# photos a person 0.9898 -> 0.9894, att_faces 1.000 either way; more whitening cost lfw_many.
WHITENED_SHARE = 0.1


class CosineHead(nn.Module):
    """Logits = scale x cosine(embedding, class weight): a normalised last layer.

    Only directions count, as in the face network's own training, so a class's weight is
    comparable to its photos' mean embedding, which is what it starts from when
    init_from_class_means() is called (see train.fit). scale sets how peaked the softmax
    is; 16 lets cosines of 0.5 vs 0.9 give a confident, not saturated, answer.
    whitening (None, or a D x D matrix set by set_class_means) is applied to the
    embedding's direction before the cosine; it is saved with the weights when set.
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 16.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, in_features) * 0.01)
        self.register_buffer("whitening", None)
        self.scale = scale
        self.in_features = in_features
        self.out_features = num_classes

    def forward(self, x):
        return self.scale * F.linear(self.directions(x), F.normalize(self.weight, dim=1))

    def directions(self, x):
        directions = F.normalize(x.flatten(1), dim=1)
        if self.whitening is None:
            return directions
        return F.normalize(directions @ self.whitening.to(directions), dim=1)

    @torch.no_grad()
    def init_from_class_means(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Set each class's weight to the mean direction of its training embeddings."""
        directions = self.directions(embeddings.float())
        sums = torch.zeros_like(self.weight).index_add_(0, labels, directions.to(self.weight))
        has_photos = sums.norm(dim=1) > 0
        self.weight[has_photos] = F.normalize(sums[has_photos], dim=1)

    @torch.no_grad()
    def set_class_means(self, embeddings, labels, whitened_share: float | None = None):
        """The class-means head: whitening from the within-person scatter of embeddings
        (N x D, with N class labels; whitened_share None: WHITENED_SHARE), then each
        class's weight its mean direction."""
        share = WHITENED_SHARE if whitened_share is None else whitened_share
        self.whitening = within_person_whitening(embeddings, labels, share)
        self.init_from_class_means(embeddings, labels)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A saved whitening comes back; a model saved without one (older, or a trained
        # cosine head) has none.
        saved = state_dict.get(prefix + "whitening")
        self.whitening = None if saved is None else torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def within_person_whitening(embeddings, labels, share: float):
    """A D x D matrix that, applied to unit embeddings, evens out the directions in which
    photos of one person vary: S^(-1/2) for S = share x their scatter about their person's
    mean + (1 - share) x its average variance on every axis. None when no person has two
    photos (nothing tells how a person's photos vary) or share is 0."""
    directions = F.normalize(embeddings.detach().float().flatten(1), dim=1)
    labels = labels.detach().cpu()
    directions = directions.cpu()
    count = int(labels.max()) + 1 if len(labels) else 0
    photos = torch.bincount(labels, minlength=count)
    freedom = len(labels) - int((photos > 0).sum())
    if share <= 0 or freedom < 1:
        return None
    sums = torch.zeros(count, directions.shape[1]).index_add_(0, labels, directions)
    spread = directions - (sums / photos.clamp(min=1)[:, None])[labels]
    scatter = spread.T @ spread / freedom
    size = scatter.shape[0]
    average = scatter.trace() / size
    if average <= 0:
        return None
    shrunk = share * scatter + (1 - share) * average * torch.eye(size)
    values, vectors = torch.linalg.eigh(shrunk.double())
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T).float()


def _implementation(model: nn.Module):
    return get_backbone(getattr(model, "architecture", "resnet18")).implementation()


def stage_names(model: nn.Module) -> tuple:
    """The model's stages input to output (the keys of its STAGE_MODULES)."""
    return tuple(_implementation(model).STAGE_MODULES)


def freeze_before(model: nn.Module, fine_tune_from: str) -> None:
    """Set requires_grad=False on every stage before fine_tune_from, True on the rest."""
    stages = stage_names(model)
    if fine_tune_from == "all":
        first_trained = 0
    elif fine_tune_from in stages:
        first_trained = stages.index(fine_tune_from)
    else:
        raise ValueError(
            f"fine_tune_from must be one of {', '.join((*stages, 'all'))}, got {fine_tune_from!r}"
        )
    modules = _implementation(model).STAGE_MODULES
    for index, stage in enumerate(stages):
        for name in modules[stage]:
            for parameter in getattr(model, name).parameters():
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


def embed_and_classify(model: nn.Module, inputs: torch.Tensor, fine_tune_from: str = "all"):
    """Run a classifier on a batch; returns (embeddings, logits).

    inputs are images, or what frozen_features(model, images, fine_tune_from) made of
    them: the result is the same. embeddings are the head's inputs (what the model has
    learnt a face looks like, used to tell known faces from unknown ones). Same cost as
    model(images): the head is applied to the embeddings, not run separately.
    """
    impl = _implementation(model)
    embeddings = _run_steps(
        model, impl, inputs, impl.STEPS[impl.FIRST_TRAINED_STEP[fine_tune_from] :]
    )
    return embeddings, model.fc(embeddings)


def embed_mirrored(model, images):
    """(embeddings, logits) of images from the mean embedding of each image and its mirror.

    A mirrored face is the same person; averaging the two embeddings cancels some of the
    pose and lighting the network picks up (on lfw_many it named 0.3 points more known
    faces right and a quarter fewer strangers). Twice the cost of one pass.
    """
    embeddings = mirror_averaged(lambda x: frozen_features(model, x, "fc"), images)
    return embeddings, model.fc(embeddings)


def mirror_averaged(embed, images):
    """The mean of embed(images) and embed(the images mirrored), run as one batch."""
    both = embed(torch.cat([images, images.flip(3)]))
    return (both[: len(images)] + both[len(images) :]) / 2


def is_cacheable(fine_tune_from: str) -> bool:
    """Whether some layers come before fine_tune_from, so frozen_features can run them once."""
    return fine_tune_from != "all"


def frozen_features(model: nn.Module, images: torch.Tensor, fine_tune_from: str):
    """The outputs of the frozen stages before fine_tune_from (not "all").

    For "fc" these are the embeddings. Call it in eval mode: frozen BatchNorm layers use
    their running statistics in training too (see set_train_mode), so the features are
    then the same as the ones training would compute, and can be computed once.
    """
    if not is_cacheable(fine_tune_from):
        raise ValueError("with fine_tune_from 'all' no layer is frozen: nothing to cache")
    impl = _implementation(model)
    return _run_steps(model, impl, images, impl.STEPS[: impl.FIRST_TRAINED_STEP[fine_tune_from]])


def _run_steps(model, impl, x, steps):
    for step in steps:
        x = impl.run_step(model, step, x)
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


def read_state_dict_file(path: str) -> dict:
    """The state dict in a file (also one under a "state_dict" or "model" key); raises
    PretrainedWeightsError naming the file when it is missing or unreadable."""
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


def load_matching_weights(model: nn.Module, state_dict: dict, source: str, skip_prefix: str):
    """Load state_dict into model, leaving out keys under skip_prefix (the head, which is
    sized for another set of classes and replaced anyway). Every other weight must match,
    or we would be training a half-random network without knowing it: raises
    PretrainedWeightsError naming what is missing, unexpected or of the wrong shape."""
    backbone = {k: v for k, v in state_dict.items() if not k.startswith(skip_prefix)}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(skip_prefix)}
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
