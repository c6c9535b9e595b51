"""Identifying faces with a trained model: one batched forward pass per request."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image
from torch import nn

from training.ml.backbones import get_backbone
from training.ml.calibrate import DEFAULT_STRICTNESS, OPERATING_POINTS, unknown_scores
from training.ml.checkpoint import CheckpointError, load_checkpoint
from training.ml.model import build_model, frozen_features, mirror_averaged
from training.ml.train import autocast_dtype, cpu_has_vnni
from training.ml.transforms import eval_transform

logger = logging.getLogger(__name__)


class Predictor:
    """A trained classifier ready to identify face crops.

    classes is the class list as stored in the checkpoint (output index i is classes[i]).
    temperature divides the logits before the softmax (from calibration; 1.0 = none).
    calibration is the dict fit() produced (see training.ml.calibrate): the score method,
    the thresholds of the operating points and, for the "centroid" score, the centroids.
    crop is the face crop the model takes ("chip" or "margin", from its backbone) and
    flip_average whether a face's embedding is the mean of it and its mirror image's.
    Safe to share between threads: predict() and identify() change no state and read
    nothing from disk.
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
        self.score_method = self.calibration.get("method") or "softmax"
        centroids = self.calibration.get("centroids")
        self.centroids = None if centroids is None else centroids.float().to(self.device)
        # The margin score's cohort (calibrate.margin_scores); None in older models.
        cohort = self.calibration.get("cohort")
        self.cohort = None
        if cohort is not None:
            labels = self.calibration["cohort_labels"]
            self.cohort = (cohort.float().to(self.device), labels.to(self.device))
        centre = self.calibration.get("embedding_centre")
        self.embedding_centre = None if centre is None else centre.float().to(self.device)
        if self.score_method == "centroid" and self.centroids is None:
            # A hand-made or older calibration without centroids: fall back to the score
            # that needs nothing more than the model.
            self.score_method = "softmax"
        self.transform = eval_transform(image_size, mean, std)
        backbone = get_backbone(getattr(model, "architecture", "resnet18"))
        self.crop = backbone.crop
        self.flip_average = backbone.flip_average
        # A backbone may offer a faster copy for inference: in int8 where the CPU has VNNI
        # and training measured the ranges (self.int8), else folded layers with weights in
        # bf16 where the hardware runs it natively (self.dtype: what its input is cast to).
        # Scores move by ~1e-3 (bf16) to ~1e-2 (int8) against the fp32 ones the thresholds
        # were calibrated on: bench/accuracy.py measures the default as it runs here.
        self.dtype = None
        implementation = backbone.implementation()
        self.int8 = self._int8_embedder(implementation)
        fast = getattr(implementation, "for_inference", None)
        if fast is not None and self.int8 is None:
            self.dtype = autocast_dtype("auto", self.device)
            self.model = fast(self.model, self.dtype)

    def _int8_embedder(self, implementation):
        """The network up to the embedding in int8 (see dlib_face_resnet.int8_embedder), or
        None: no ranges in the calibration (older models), no VNNI, not on the CPU, or a
        torch without this quantization; float32 or bf16 are then used as before."""
        ranges = self.calibration.get("int8_ranges")
        build = getattr(implementation, "int8_embedder", None)
        if ranges is None or build is None or self.device.type != "cpu" or not cpu_has_vnni():
            return None
        try:
            return build(self.model, ranges)
        except (ImportError, AttributeError, ValueError, RuntimeError) as exc:
            logger.warning("The face network runs in bf16 or float32, not int8: %s", exc)
            return None

    def _int8_on_every_core(self, images):
        """The int8 network's embeddings of images, the batch cut into one part a core when
        torch runs on one thread (FACEWEB_TORCH_THREADS' default): a face and its mirror
        image on two cores take ~3.0 ms against ~4.8 ms on one (bf16 was slower so: 12.9
        against 9.7 ms). The same embeddings: each face goes through the network alone."""
        parts = 1 if torch.get_num_threads() > 1 else min(len(images), os.cpu_count() or 1)
        if parts == 1:
            return self.int8(images)
        chunks = images.tensor_split(parts)

        def run(chunk):
            with torch.inference_mode():  # thread-local: the helper thread's own
                return self.int8(chunk)

        # Threads started for the request, as HOG's are (a pool kept across requests gained
        # nothing there, and would not survive a fork into a worker process).
        with ThreadPoolExecutor(parts - 1) as pool:
            rest = pool.map(run, chunks[1:])
            return torch.cat([run(chunks[0]), *rest])

    @classmethod
    def from_checkpoint(
        cls, path, expected_sha256: str | None = None, device: str | torch.device = "cpu"
    ) -> Predictor:
        """Load a checkpoint (checksum verified when expected_sha256 is given).

        Uses the checkpoint's calibration (temperature, thresholds, centroids) when it has
        one. Raises CheckpointError for a bad file or weights that do not fit the
        architecture.
        """
        checkpoint = load_checkpoint(path, expected_sha256)
        classes = checkpoint["classes"]
        # Checkpoints from before the head was a choice have the recipe's linear one.
        head = (checkpoint["config"] or {}).get("head", "linear")
        try:
            model = build_model(checkpoint["architecture"], len(classes), "none", "all", head)
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
        return [result["top_k"] for result in self.identify(images, top_k, threshold=0.0)]

    def identify(
        self,
        images: list[Image.Image],
        top_k: int = 5,
        strictness: str = DEFAULT_STRICTNESS,
        threshold: float | None = None,
    ) -> list[dict]:
        """Classify face crops (any PIL mode) in one batched forward pass, saying which
        belong to nobody the model knows.

        Returns per image {"top_k": [(class_index, probability), ...] most probable first,
        "score": how much the face looks like the top-1 person (see calibrate.unknown_scores),
        "threshold": the threshold applied or None, "accepted": whether the top-1 person
        is named, "embedding": the face's embedding, a list of floats (to group
        similar unknown faces)}. threshold, when given, overrides the calibrated one (an
        administrator's setting); otherwise strictness picks one of
        calibrate.OPERATING_POINTS. Without a calibrated threshold (no validation data)
        every face is accepted.
        Raises ValueError for a bad top_k or strictness. No side effects.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if strictness not in OPERATING_POINTS:
            raise ValueError(
                f"strictness must be one of {', '.join(OPERATING_POINTS)}, got {strictness!r}"
            )
        if not images:
            return []
        batch = torch.stack([self.transform(image) for image in images]).to(self.device)
        if self.dtype is not None:
            batch = batch.to(self.dtype, memory_format=torch.channels_last)
        if threshold is None:
            threshold = (self.calibration.get("thresholds") or {}).get(strictness)
        with torch.inference_mode():
            embeddings, logits, scores = self._embed_and_score(batch)
            probabilities = torch.softmax(logits / self.temperature, dim=1)
            values, indices = probabilities.topk(min(top_k, len(self.classes)), dim=1)
        return [
            {
                "top_k": list(zip(row_indices, row_values, strict=True)),
                "score": score,
                "threshold": threshold,
                "accepted": threshold is None or score >= threshold,
                "embedding": embedding,
            }
            for row_indices, row_values, score, embedding in zip(
                indices.tolist(),
                values.tolist(),
                scores.tolist(),
                embeddings.tolist(),
                strict=True,
            )
        ]

    def _embed_and_score(self, batch):
        """(embeddings, logits, scores) in float32; with a backbone that wants it, a face's
        embedding is the mean of its own and its mirror image's (one batch)."""

        def embed(images):
            if self.int8 is not None:
                return self._int8_on_every_core(images)
            # The head in float32: in bf16 the cosines of a face to two close people's
            # means round alike and the wrong one can win (0.25% of lfw_many's faces).
            return frozen_features(self.model, images, "fc").float()

        embeddings = mirror_averaged(embed, batch) if self.flip_average else embed(batch)
        logits = self.model.fc(embeddings)
        scores = unknown_scores(
            logits,
            embeddings,
            self.score_method,
            self.temperature,
            self.centroids,
            self.embedding_centre,
            self.cohort,
        )
        return embeddings, logits, scores
