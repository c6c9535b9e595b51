"""The training loop: fit() runs train_one_epoch and evaluate for each epoch, then calibrates."""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from training.ml.backbones import get_backbone
from training.ml.calibrate import calibrate, calibrate_margin, no_calibration
from training.ml.config import TrainConfig
from training.ml.data import InMemoryBatches, load_data
from training.ml.embedder import BASE_BACKBONE
from training.ml.feature_cache import FeatureBatches, cache_features, views_to_cache
from training.ml.model import (
    CosineHead,
    autocast,
    build_model,
    embed_and_classify,
    embed_mirrored,
    frozen_features,
    is_cacheable,
    pick_device,
    set_train_mode,
    to_model_input,
)
from training.ml.transforms import eval_batch_transform, train_transform


@dataclass
class EpochStats:
    """What one epoch achieved. epoch counts from 1; val_accuracy is None without val data.

    seconds covers training and validation; images_per_second only the training part. In
    the first epoch both include computing the cache of frozen features, if any.
    """

    epoch: int
    epochs: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None
    seconds: float
    images_per_second: float


class TrainingCancelled(Exception):
    """should_stop() asked fit() to stop; nothing was produced."""


@dataclass
class TrainResult:
    """The outcome of fit(): the weights of the best epoch and how training went.

    state_dict holds CPU tensors from the epoch with the best validation accuracy (ties go
    to the lower validation loss), or from the last epoch when there is no validation data.
    calibration (see calibrate.calibrate) holds plain values and tensors only, ready for
    save_checkpoint; its "thresholds" are None when there was no validation data.
    cached_views is how many views of each training photo the frozen layers computed once
    (see feature_cache); 0 when they ran in every epoch. stopped_early is True when early
    stopping ended training before config.epochs.
    """

    state_dict: dict
    classes: list[str]
    history: list[EpochStats]
    best_val_accuracy: float | None
    best_epoch: int
    device: str
    seconds: float
    calibration: dict = field(default_factory=dict)
    cached_views: int = 0
    stopped_early: bool = False


def fit(
    data_dir,
    config: TrainConfig,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    strangers: torch.Tensor | None = None,
) -> TrainResult:
    """Train a classifier on data_dir/train/<class>/*, validating on data_dir/val/<class>/*,
    then calibrate its "unknown" thresholds on the validation photos.

    strangers (M x D, or None): embeddings of faces marked "not anyone we know", for the
    "margin" score (see calibrate); used only by a model whose embedding they are (the face
    network, frozen: strangers_apply()).

    Calls on_epoch(EpochStats) after each epoch and on_batch(epoch, batch_index,
    batches_per_epoch) after each batch (both count from 1). should_stop() is asked after
    every batch; when it returns True, TrainingCancelled is raised. With
    config.early_stopping_patience, training ends once validation accuracy has not risen
    for that many epochs.

    When only layers from layer3 on are trained and config.cached_views > 0, the frozen
    layers run once per view of each photo rather than in every epoch (see feature_cache):
    the same model and loss, with augmentation drawn from a fixed pool of views.

    Seeds Python, numpy and torch's global generators from config.seed; may download
    pretrained weights (see build_model). Writes no files, so running it twice is safe.
    Raises ValueError for unusable data and PretrainedWeightsError for missing weights.
    """
    started = time.perf_counter()
    config = config.resolved()
    seed_everything(config.seed)
    device = pick_device()
    train_batches, val_batches, classes = load_data(
        data_dir, config.image_size, config.batch_size, config.seed
    )
    fine_tune_from = config.resolved_fine_tune_from()
    backbone = get_backbone(config.architecture)
    model = build_model(
        config.architecture, len(classes), config.pretrained, fine_tune_from, config.head
    )
    # channels_last lets oneDNN (CPU) and cuDNN pick their fastest convolutions.
    model = model.to(device, memory_format=torch.channels_last)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, len(train_batches))
    pixel_steps = _Steps(
        train=train_transform(config.augmentation, backbone.mean, backbone.std),
        eval=eval_batch_transform(backbone.mean, backbone.std),
        dtype=autocast_dtype(config.precision, device),
        generator=torch.Generator().manual_seed(config.seed),
        flip_average=backbone.flip_average,
    )
    history: list[EpochStats] = []
    best = _Best()
    # The cache is built inside epoch 1's clock: it is part of what training costs.
    epoch_started = time.perf_counter()
    steps, train_input, val_input = cache_frozen_layers(
        model, config, train_batches, val_batches, device, pixel_steps
    )
    if isinstance(model.fc, CosineHead) and config.pretrained != "none":
        start_from_class_means(model, steps, train_input, train_batches, device, pixel_steps)
    if config.head == "class_means":
        # Nothing to train: the head is each person's mean face. One "epoch" says how
        # it does on the validation photos.
        stats, val_loss = class_means_epoch(
            model, train_input, val_input, device, steps, epoch_started
        )
        history.append(stats)
        best.consider(model, 1, stats.val_accuracy, val_loss)
        if on_epoch is not None:
            on_epoch(stats)
    else:
        for epoch in range(1, config.epochs + 1):
            extra_seconds = time.perf_counter() - epoch_started if epoch == 1 else 0.0
            epoch_started = time.perf_counter()
            report_batch = _batch_reporter(epoch, len(train_batches), on_batch, should_stop)
            loss, train_accuracy, images_per_second = train_one_epoch(
                model, criterion, optimizer, train_input, device, report_batch, steps, scheduler
            )
            val_accuracy = val_loss = None
            if val_input is not None:
                val_accuracy, val_loss = evaluate(model, val_input, device, steps)
            stats = EpochStats(
                epoch=epoch,
                epochs=config.epochs,
                loss=loss,
                train_accuracy=train_accuracy,
                val_accuracy=val_accuracy,
                seconds=time.perf_counter() - epoch_started + extra_seconds,
                images_per_second=_slowed_by(
                    images_per_second, len(train_batches.labels), extra_seconds
                ),
            )
            history.append(stats)
            best.consider(model, epoch, val_accuracy, val_loss)
            if on_epoch is not None:
                on_epoch(stats)
            if best.epochs_without_progress(epoch) >= config.early_stopping_patience > 0:
                break
    model.load_state_dict(best.state_dict)
    cached_once = steps.cached_before == "fc" and train_input.views == 1
    if cached_once and config.augmentation == "none":
        # The frozen network's mirror-averaged embeddings are already cached, as the
        # predictor computes them: the calibration needs no second pass over the photos.
        outputs = outputs_from_cache(model, train_input, val_input)
    else:
        outputs = outputs_from_photos(model, train_batches, val_batches, device, pixel_steps)
    if not strangers_apply(config):
        strangers = None
    calibration = calibrate_outputs(config, model.fc.out_features, *outputs, strangers)
    if config.head == "class_means" and calibration.get("centroids") is not None:
        # The validation photos have told how well the head does; the kept head is the
        # mean of every enrolled photo (with 3 photos a person, 3 beat 2 by far), compared
        # after whitening (model.WHITENED_SHARE). The "unknown" score keeps the plain
        # cosines to those means that its thresholds were calibrated on.
        model.fc.set_class_means(*enrolled_embeddings(*outputs))
        best.state_dict = {
            k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }
    find_int8_ranges = getattr(backbone.implementation(), "int8_ranges", None)
    if find_int8_ranges is not None:
        # What the predictor needs to run the network in int8 (Predictor), from a spread
        # of the enrolment photos.
        calibration["int8_ranges"] = find_int8_ranges(
            model, int8_calibration_chips(train_batches, pixel_steps)
        )
    return TrainResult(
        state_dict=best.state_dict,
        classes=classes,
        history=history,
        best_val_accuracy=best.val_accuracy,
        best_epoch=best.epoch,
        device=str(device),
        seconds=time.perf_counter() - started,
        calibration=calibration,
        cached_views=train_input.views if steps.cached_before else 0,
        stopped_early=len(history) < config.epochs,
    )


# How many enrolment photos (each with its mirror image) set the int8 network's ranges.
INT8_CALIBRATION_CHIPS = 32


def int8_calibration_chips(train_batches, pixel_steps, count: int = INT8_CALIBRATION_CHIPS):
    """Up to count training photos spread evenly over the (class-sorted) set, normalised as
    for validation: whose activations set the int8 network's ranges."""
    pixels = train_batches.pixels
    chosen = torch.linspace(0, len(pixels) - 1, min(count, len(pixels))).round().long()
    return pixel_steps.eval(pixels[chosen])


def class_means_epoch(model, train_input, val_input, device, steps, started):
    """The one "epoch" of a class-means head: its accuracy on the training photos (and its
    cross-entropy there, as the loss) and on the validation photos. Returns (EpochStats,
    validation loss or None)."""
    train_accuracy, loss = evaluate(model, train_input, device, steps)
    val_accuracy = val_loss = None
    if val_input is not None:
        val_accuracy, val_loss = evaluate(model, val_input, device, steps)
    seconds = time.perf_counter() - started
    stats = EpochStats(
        epoch=1,
        epochs=1,
        loss=loss,
        train_accuracy=train_accuracy,
        val_accuracy=val_accuracy,
        seconds=seconds,
        images_per_second=len(train_input.labels) / max(seconds, 1e-9),
    )
    return stats, val_loss


def start_from_class_means(model, steps, train_input, train_batches, device, pixel_steps):
    """Point each class's weight of a cosine head at its training photos' mean embedding.

    With a pretrained face network that is already a good classifier (nearest class
    mean), so training refines it rather than starting from noise. Uses the cached
    embeddings when the head alone is trained, else one unaugmented pass over the photos.
    """
    if steps.cached_before == "fc":
        embeddings, labels = train_input.features[0], train_input.labels
    else:
        ordered = InMemoryBatches(
            train_batches.pixels, train_batches.labels, train_batches.batch_size, shuffle=False
        )
        embeddings, _, labels = collect_outputs(model, ordered, device, pixel_steps)
    model.fc.init_from_class_means(embeddings.to(device), labels.to(device))


def cache_frozen_layers(model, config: TrainConfig, train_batches, val_batches, device, steps):
    """Compute the frozen layers' features of the training and validation photos once,
    when fit() can train on them; returns (steps, train input, val input).

    Without a cache (all layers trained, config.cached_views == 0, or a cache that would
    not fit in feature_cache.MAX_CACHE_BYTES) these are steps and the pixel batches as
    given. Otherwise the batches hold features and steps.cached_before names the stage
    they enter the model at. The train features keep the pixel batches' shuffle
    generator, so both paths see the photos in the same order.
    """
    fine_tune_from = config.resolved_fine_tune_from()
    if not is_cacheable(fine_tune_from) or config.cached_views == 0:
        return steps, train_batches, val_batches
    val_images = 0 if val_batches is None else len(val_batches.labels)
    views = views_to_cache(
        config.cached_views,
        config.augmentation,
        len(train_batches.labels),
        val_images,
        _feature_bytes(model, fine_tune_from, config.image_size, device, steps.dtype),
    )
    if views == 0:
        return steps, train_batches, val_batches

    # Unaugmented embeddings of a face network are mirror-averaged, as the predictor's
    # are; augmented views flip at random instead.
    flip = steps.flip_average and fine_tune_from == "fc"

    def cache(batches, transform, count, unaugmented):
        return cache_features(
            model, batches, transform, count, fine_tune_from, device, steps.dtype,
            flip_average=flip and unaugmented,
        )  # fmt: skip

    augment = functools.partial(steps.train, generator=steps.generator)
    train_input = FeatureBatches(
        cache(train_batches, augment, views, config.augmentation == "none"),
        train_batches.labels,
        train_batches.batch_size,
        shuffle=True,
        generator=train_batches.generator,
        view_generator=steps.generator,
    )
    val_input = None
    if val_batches is not None:
        val_features = cache(val_batches, steps.eval, 1, unaugmented=True)
        val_input = FeatureBatches(val_features, val_batches.labels, val_batches.batch_size, False)
    return dataclasses.replace(steps, cached_before=fine_tune_from), train_input, val_input


def _feature_bytes(model, fine_tune_from, image_size, device, dtype) -> int:
    model.eval()
    probe = torch.zeros(1, 3, image_size, image_size, device=device)
    with torch.no_grad(), autocast(device, dtype):
        features = frozen_features(model, to_model_input(probe, device), fine_tune_from)
    return features.numel() * features.element_size()


def _slowed_by(images_per_second, images, extra_seconds):
    return images / (images / images_per_second + extra_seconds)


def make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or Adam over the trainable parameters.

    Weight decay applies to convolution and linear weights only: decaying BatchNorm
    scales and biases just fights the normalisation and helps nothing.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim > 1], "weight_decay": config.weight_decay},
        {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},
    ]
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # The fused kernel updates all parameters in one pass: half the time of the default
    # loop on a CPU (~10 of ~300 ms per ResNet18 step at 112 px); the same update rule.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in trainable)
    return optimizer_class(groups, lr=config.learning_rate, fused=fused or None)


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule, stepped after every batch; None for a constant rate.

    One-cycle warms up to config.learning_rate over the first 25% of the steps and anneals
    to almost zero: from random weights that trains as well in a fraction of the epochs a
    constant rate needs, and the last epochs (the usual best) see a settled model.
    """
    total_steps = config.epochs * steps_per_epoch
    # OneCycleLR needs at least two warm-up steps; a run that short keeps a constant rate.
    if config.schedule == "constant" or total_steps < 8:
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.learning_rate,
        total_steps=total_steps,
        pct_start=0.25,
    )


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a TrainConfig.precision on device; None means float32.

    "auto" picks bfloat16 where it is native: CUDA GPUs that support it and CPUs with
    AVX512-BF16 or AMX. Elsewhere bfloat16 is emulated and slower than float32.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (Linux only; False when unsure)."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni() -> bool:
    """Whether this CPU multiplies int8 with VNNI (Linux only; False when unsure): int8
    inference is fast there, and safe over activations' whole 8-bit range."""
    return bool(_cpu_flags() & {"avx512_vnni", "amx_int8"})


@functools.cache
def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(f.read().split())
    except OSError:
        return frozenset()


@dataclass
class _Steps:
    """How batches are prepared and run: the transforms, autocast dtype and augmentation
    random generator, shared by training, validation and calibration.

    cached_before is None when batches hold pixels; otherwise they hold the features the
    frozen layers before that stage made of them (see cache_frozen_layers), and the
    transforms are not applied.
    """

    train: Callable
    eval: Callable
    dtype: torch.dtype | None
    generator: torch.Generator
    cached_before: str | None = None
    # Unaugmented passes (validation, calibration) embed each face and its mirror image
    # and average the two embeddings, as the predictor does (Backbone.flip_average).
    flip_average: bool = False


def train_one_epoch(
    model, criterion, optimizer, batches, device, after_batch=None, steps=None, scheduler=None
):
    """Run one pass over batches, updating the model's trainable parameters.

    batches yields (uint8 pixels, labels), which steps.train augments and normalises, or
    (cached features, labels) when steps.cached_before is set.
    The scheduler, if any, steps after every batch. after_batch(batch_index) is called
    after each batch (counting from 1). Returns (mean loss per image, training accuracy,
    images per second).
    """
    steps = steps or _default_steps()
    set_train_mode(model)
    started = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for batch_index, (batch, labels) in enumerate(batches, start=1):
        inputs = _model_input(batch, steps, device, augment=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, steps.dtype):
            _, logits = embed_and_classify(model, inputs, steps.cached_before or "all")
            loss = criterion(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
        if after_batch is not None:
            after_batch(batch_index)
    seconds = time.perf_counter() - started
    return total_loss / seen, correct / seen, seen / seconds


def evaluate(model, batches, device, steps=None) -> tuple[float, float]:
    """Return (accuracy, mean cross-entropy loss) of model over batches; no gradients.

    Leaves the model in eval mode.
    """
    embeddings, logits, labels = collect_outputs(model, batches, device, steps)
    if len(labels) == 0:
        raise ValueError("cannot evaluate on an empty set of batches")
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return accuracy, nn.functional.cross_entropy(logits, labels).item()


def collect_outputs(model, batches, device, steps=None, dtype="same"):
    """Run model over batches in eval mode: (embeddings N x D, logits N x C, labels N).

    Outputs are float32 CPU tensors. dtype overrides steps.dtype (None: float32).
    """
    steps = steps or _default_steps()
    dtype = steps.dtype if dtype == "same" else dtype
    model.eval()
    outputs = []
    with torch.inference_mode(), autocast(device, dtype):
        for batch, labels in batches:
            inputs = _model_input(batch, steps, device, augment=False)
            if steps.flip_average and steps.cached_before is None:
                embeddings, logits = embed_mirrored(model, inputs)
            else:
                embeddings, logits = embed_and_classify(model, inputs, steps.cached_before or "all")
            outputs.append((embeddings.float().cpu(), logits.float().cpu(), labels))
    if not outputs:
        return torch.empty(0, 0), torch.empty(0, 0), torch.empty(0, dtype=torch.int64)
    return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))


def outputs_from_photos(model, train_batches, val_batches, device, steps):
    """What calibration needs, from one unaugmented float32 pass over the photos (as the
    predictor runs, so scores at identification match the thresholds): ((train embeddings,
    train labels), (val embeddings, val logits, val labels) or None)."""
    ordered_train = InMemoryBatches(
        train_batches.pixels, train_batches.labels, train_batches.batch_size, shuffle=False
    )
    train_embeddings, _, train_labels = collect_outputs(
        model, ordered_train, device, steps, dtype=None
    )
    val = None
    if val_batches is not None:
        val = collect_outputs(model, val_batches, device, steps, dtype=None)
    return (train_embeddings, train_labels), val


def outputs_from_cache(model, train_input, val_input):
    """outputs_from_photos' result from cached unaugmented embeddings (FeatureBatches of
    one view) of a model trained from "fc", without running the frozen network again."""
    train = (train_input.features[0].float().cpu(), train_input.labels)
    if val_input is None:
        return train, None
    val_embeddings = val_input.features[0].float().cpu()
    with torch.inference_mode():
        val_logits = model.fc(val_embeddings.to(next(model.fc.parameters()).device))
    return train, (val_embeddings, val_logits.float().cpu(), val_input.labels)


def enrolled_embeddings(train, val) -> tuple:
    """(embeddings, labels) of every enrolled photo, train and val, from fit's outputs."""
    if val is None:
        return train
    return torch.cat([train[0], val[0]]), torch.cat([train[1], val[2]])


def strangers_apply(config: TrainConfig) -> bool:
    """Whether the model's embedding (config resolved) is the face network's own, frozen:
    the embedding stored for faces marked "not anyone we know"."""
    frozen = config.resolved_fine_tune_from() == "fc"
    return config.architecture == BASE_BACKBONE and config.pretrained == "face" and frozen


def calibrate_outputs(config: TrainConfig, num_classes, train, val, strangers=None) -> dict:
    """The calibration dict of a trained model (see calibrate.calibrate and
    calibrate_margin) from its outputs on the training and validation photos."""
    train_embeddings, train_labels = train
    if config.unknown_score == "margin":
        # Every enrolled photo counts: the thresholds come from leaving each one out in turn.
        val_logits, val_labels = (None, None) if val is None else val[1:]
        return calibrate_margin(
            *enrolled_embeddings(train, val), num_classes, val_logits, val_labels, strangers
        )
    if val is None:
        return no_calibration(config.unknown_score, train_embeddings, train_labels, num_classes)
    val_embeddings, val_logits, val_labels = val
    return calibrate(
        config.unknown_score,
        num_classes,
        val_logits,
        val_labels,
        val_embeddings,
        train_embeddings,
        train_labels,
    )


def _model_input(batch, steps, device, augment):
    if steps.cached_before is not None:
        return to_model_input(batch, device)
    images = steps.train(batch, steps.generator) if augment else steps.eval(batch)
    return to_model_input(images, device)


def _default_steps():
    return _Steps(train_transform("none"), eval_batch_transform(), None, None)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batch_reporter(epoch, batches, on_batch, should_stop):
    def after_batch(batch_index):
        if on_batch is not None:
            on_batch(epoch, batch_index, batches)
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cancelled during epoch {epoch}, batch {batch_index}")

    return after_batch


class _Best:
    """Keeps a CPU copy of the weights of the best epoch seen so far."""

    def __init__(self):
        self.state_dict, self.epoch = None, 0
        self.val_accuracy = self.val_loss = None
        self.top_accuracy, self.top_accuracy_epoch = None, 0

    def consider(self, model, epoch, val_accuracy, val_loss):
        better = (
            val_accuracy is None
            or self.val_accuracy is None
            or (val_accuracy, -val_loss) > (self.val_accuracy, -self.val_loss)
        )
        if better:
            self.state_dict = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
            self.epoch, self.val_accuracy, self.val_loss = epoch, val_accuracy, val_loss
        if val_accuracy is not None and (
            self.top_accuracy is None or val_accuracy > self.top_accuracy
        ):
            self.top_accuracy, self.top_accuracy_epoch = val_accuracy, epoch

    def epochs_without_progress(self, epoch) -> int:
        """Epochs since validation accuracy last rose (0 without validation data).

        Only a higher accuracy counts: a tie at a lower loss changes the weights kept, but
        is no sign that training is still getting anywhere.
        """
        return 0 if self.top_accuracy is None else epoch - self.top_accuracy_epoch
