"""Identifying faces with a trained model: one batched forward pass per request."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from training.ml.checkpoint import CheckpointError, load_checkpoint
from training.ml.model import build_model
from training.ml.transforms import eval_transform, to_rgb


class Predictor:
    """A trained classifier ready to identify face crops.

    classes is the class list as stored in the checkpoint (output index i is classes[i]).
    temperature divides the logits before the softmax (from calibration; 1.0 = none).
    Safe to share between threads: predict() does not change any state.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: list,
        image_size: int,
        mean,
        std,
        temperature: float = 1.0,
        device: str | torch.device = "cpu",
        calibration: dict | None = None,
    ):
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.classes = list(classes)
        self.image_size = image_size
        self.temperature = float(temperature)
        self.calibration = dict(calibration or {})
        self.transform = eval_transform(image_size, mean, std)

    @classmethod
    def from_checkpoint(
        cls, path, expected_sha256: str | None = None, device: str | torch.device = "cpu"
    ) -> Predictor:
        """Load a checkpoint (checksum verified when expected_sha256 is given).

        Uses calibration["temperature"] when the checkpoint has one. Raises
        CheckpointError for a bad file or weights that do not fit the architecture.
        """
        checkpoint = load_checkpoint(path, expected_sha256)
        classes = checkpoint["classes"]
        try:
            model = build_model(checkpoint["architecture"], len(classes), "none", "all")
            model.load_state_dict(checkpoint["state_dict"])
        except (ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} does not hold a usable model: {exc}") from exc
        calibration = checkpoint["calibration"] or {}
        return cls(
            model,
            classes,
            checkpoint["image_size"],
            checkpoint["mean"],
            checkpoint["std"],
            temperature=calibration.get("temperature", 1.0),
            device=device,
            calibration=calibration,
        )

    def predict(self, images: list[Image.Image], top_k: int = 5) -> list[list[tuple[int, float]]]:
        """Classify images (any PIL mode) in one batched forward pass.

        Returns, per image, up to top_k (class_index, probability) pairs, most probable
        first; k is min(top_k, number of classes). No side effects.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if not images:
            return []
        batch = torch.stack([self.transform(to_rgb(image)) for image in images])
        with torch.inference_mode():
            logits = self.model(batch.to(self.device))
            probabilities = torch.softmax(logits.float() / self.temperature, dim=1)
            values, indices = probabilities.topk(min(top_k, len(self.classes)), dim=1)
        return [
            list(zip(row_indices, row_values, strict=True))
            for row_indices, row_values in zip(indices.tolist(), values.tolist(), strict=True)
        ]
