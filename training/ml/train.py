"""The training loop: fit() runs train_one_epoch and evaluate for each epoch."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.ml.config import TrainConfig
from training.ml.data import load_data
from training.ml.model import build_model, pick_device, set_train_mode


@dataclass
class EpochStats:
    """What one epoch achieved. epoch counts from 1; val_accuracy is None without val data.

    seconds covers training and validation; images_per_second only the training part.
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
    """

    state_dict: dict
    classes: list[str]
    history: list[EpochStats]
    best_val_accuracy: float | None
    best_epoch: int
    device: str
    seconds: float


def fit(
    data_dir,
    config: TrainConfig,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a classifier on data_dir/train/<class>/*, validating on data_dir/val/<class>/*.

    Calls on_epoch(EpochStats) after each epoch and on_batch(epoch, batch_index,
    batches_per_epoch) after each batch (both count from 1). should_stop() is asked after
    every batch; when it returns True, TrainingCancelled is raised.

    Seeds Python, numpy and torch's global generators from config.seed; may download
    pretrained weights (see build_model). Writes no files, so running it twice is safe.
    Raises ValueError for unusable data and PretrainedWeightsError for missing weights.
    """
    started = time.perf_counter()
    seed_everything(config.seed)
    device = pick_device()
    train_loader, val_loader, classes = load_data(
        data_dir, config.image_size, config.augmentation, config.batch_size, config.seed
    )
    model = build_model(
        config.architecture, len(classes), config.pretrained, config.resolved_fine_tune_from()
    ).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    history: list[EpochStats] = []
    best = _Best()
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        report_batch = _batch_reporter(epoch, len(train_loader), on_batch, should_stop)
        loss, train_accuracy, images_per_second = train_one_epoch(
            model, criterion, optimizer, train_loader, device, report_batch
        )
        val_accuracy = val_loss = None
        if val_loader is not None:
            val_accuracy, val_loss = evaluate(model, val_loader, device)
        stats = EpochStats(
            epoch=epoch,
            epochs=config.epochs,
            loss=loss,
            train_accuracy=train_accuracy,
            val_accuracy=val_accuracy,
            seconds=time.perf_counter() - epoch_started,
            images_per_second=images_per_second,
        )
        history.append(stats)
        best.consider(model, epoch, val_accuracy, val_loss)
        if on_epoch is not None:
            on_epoch(stats)
    return TrainResult(
        state_dict=best.state_dict,
        classes=classes,
        history=history,
        best_val_accuracy=best.val_accuracy,
        best_epoch=best.epoch,
        device=str(device),
        seconds=time.perf_counter() - started,
    )


def train_one_epoch(model, criterion, optimizer, loader, device, after_batch=None):
    """Run one pass over loader, updating the model's trainable parameters.

    after_batch(batch_index) is called after each batch (counting from 1). Returns
    (mean loss per image, training accuracy, images per second).
    """
    set_train_mode(model)
    started = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for batch_index, (images, labels) in enumerate(loader, start=1):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = model(images)
        loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
        if after_batch is not None:
            after_batch(batch_index)
    seconds = time.perf_counter() - started
    return total_loss / seen, correct / seen, seen / seconds


def evaluate(model, loader, device) -> tuple[float, float]:
    """Return (accuracy, mean cross-entropy loss) of model over loader; no gradients.

    Leaves the model in eval mode.
    """
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.inference_mode():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            total_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
    if seen == 0:
        raise ValueError("cannot evaluate on an empty loader")
    return correct / seen, total_loss / seen


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
