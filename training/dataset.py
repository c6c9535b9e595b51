"""Export the enrolled photos into the recipe's layout: OUT/train/<person>/, OUT/val/<person>/.

The split is deterministic: the same photos, fraction and seed give the same folders on any
machine, whatever order the photos were uploaded in.
"""

import hashlib
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.storage import default_storage

from identities.models import FaceImage, Identity, PredictionFace
from training.ml.backbones import DEFAULT_BACKBONE, get_backbone

from .enrolment import base_embedding_model

MANIFEST_NAME = "manifest.json"


class NotEnoughData(Exception):
    """The enrolled photos cannot make a training set; the message says what is missing."""


@dataclass
class Manifest:
    classes: list  # [{id, name, folder}] in folder (= model output) order
    files: list = field(default_factory=list)  # [{image_id, identity_id, split, path, sha256}]
    skipped: list = field(default_factory=list)  # [{id, name, reason}]
    stranger_faces: list = field(default_factory=list)  # PredictionFace ids (stranger_faces())
    dataset_hash: str = ""
    val_fraction: float = 0.2
    seed: int = 0

    def to_dict(self):
        return dict(self.__dict__)

    def count(self, split):
        return sum(1 for f in self.files if f["split"] == split)


# The file of a FaceImage each kind of backbone crop (Backbone.crop) trains on.
CROP_FIELDS = {"margin": "face_crop", "chip": "face_chip"}
DEFAULT_CROP = get_backbone(DEFAULT_BACKBONE).crop


def trainable_images(crop=DEFAULT_CROP):
    """Photos that training uses: status ok photos of active identities that have the face
    file crop needs ("chip": the aligned chip; "margin": the margin crop). Photos stored
    before chips existed get theirs from `manage.py recompute_faces`."""
    return (
        FaceImage.objects.filter(status=FaceImage.Status.OK, identity__is_active=True)
        .exclude(**{CROP_FIELDS[crop]: ""})
        .select_related("identity")
    )


def dataset_hash(images, strangers=()):
    """A hash of which photos belong to whom, and of which faces (PredictionFace ids) a model
    learns to refuse; it changes when the training data changes."""
    pairs = [(image.identity_id, image.sha256) for image in images]
    return _hash_of_pairs(pairs + _stranger_pairs(strangers))


def _stranger_pairs(face_ids):
    return [("stranger", face_id) for face_id in face_ids]


def _hash_of_pairs(pairs):
    lines = sorted(f"{identity_id}:{sha256}" for identity_id, sha256 in pairs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def split_images(images, val_fraction, seed):
    """Return (train, val) lists for one person's photos, deterministically."""
    ordered = sorted(images, key=lambda image: image.sha256)
    random.Random(seed).shuffle(ordered)
    if len(ordered) < 2:
        return ordered, []
    n_val = min(len(ordered) - 1, max(1, round(len(ordered) * val_fraction)))
    return ordered[n_val:], ordered[:n_val]


# The newest faces marked "not anyone we know" that a model learns to refuse (see
# training.ml.calibrate: a stranger who comes back is close to one of them); 128 floats each.
MAX_STRANGER_FACES = 5000


def stranger_faces():
    """Faces marked "not anyone we know" that have the base face network's embedding,
    newest first, at most MAX_STRANGER_FACES."""
    return (
        PredictionFace.objects.filter(
            review=PredictionFace.Review.REJECTED, embedding_model=base_embedding_model()
        )
        .exclude(embedding=None)
        .order_by("-reviewed_at", "-pk")[:MAX_STRANGER_FACES]
    )


def plan_dataset(val_fraction=0.2, seed=0, min_images=2, crop=DEFAULT_CROP):
    """Decide the split without writing anything; raises NotEnoughData. crop: the kind of
    face file to export (see CROP_FIELDS)."""
    if not 0 <= val_fraction < 1:
        raise ValueError("The validation fraction must be at least 0 and below 1.")
    by_identity = {}
    for image in trainable_images(crop):
        by_identity.setdefault(image.identity, []).append(image)
    manifest = Manifest(classes=[], val_fraction=val_fraction, seed=seed)
    used = []
    # Sorted here, not by the database: the model's output order is Python's sorted() of the
    # folder names, and a database collation may order slugs differently.
    for identity in sorted(Identity.objects.filter(is_active=True), key=lambda i: i.slug):
        images = by_identity.get(identity, [])
        if len(images) < min_images:
            reason = f"{len(images)} usable photo(s), {min_images} needed"
            manifest.skipped.append({"id": identity.pk, "name": identity.name, "reason": reason})
            continue
        manifest.classes.append({"id": identity.pk, "name": identity.name, "folder": identity.slug})
        train, val = split_images(images, val_fraction, seed)
        for split, chosen in (("train", train), ("val", val)):
            for image in chosen:
                path = f"{split}/{identity.slug}/{image.pk}.jpg"
                manifest.files.append(
                    {
                        "image_id": image.pk,
                        "identity_id": identity.pk,
                        "split": split,
                        "path": path,
                        "sha256": image.sha256,
                        "source": getattr(image, CROP_FIELDS[crop]).name,
                    }
                )
        used.extend(images)
    if len(manifest.classes) < 2:
        raise NotEnoughData(
            f"Training needs at least two people with {min_images} or more usable photos each; "
            f"{len(manifest.classes)} qualify."
        )
    manifest.stranger_faces = list(stranger_faces().values_list("pk", flat=True))
    manifest.dataset_hash = dataset_hash(used, manifest.stranger_faces)
    return manifest


def current_dataset_hash(min_images=2):
    """plan_dataset's dataset_hash, from one query of (identity, sha256) pairs; None when
    the photos cannot make a training set. Read-only and cheap: no rows are built."""
    pairs = trainable_images().values_list("identity_id", "sha256")
    by_identity = {}
    for identity_id, sha256 in pairs:
        by_identity.setdefault(identity_id, []).append(sha256)
    used = {k: v for k, v in by_identity.items() if len(v) >= min_images}
    if len(used) < 2:
        return None
    pairs = [(k, sha256) for k, values in used.items() for sha256 in values]
    return _hash_of_pairs(pairs + _stranger_pairs(stranger_faces().values_list("pk", flat=True)))


def export_dataset(out_dir, val_fraction=0.2, seed=0, min_images=2, crop=DEFAULT_CROP):
    """Write the photos and OUT/manifest.json; returns the Manifest.

    OUT is replaced as a whole: files from an earlier export are removed first, so running
    twice gives the same folders.
    """
    manifest = plan_dataset(val_fraction, seed, min_images, crop)
    out_dir = Path(out_dir)
    for split in ("train", "val"):
        shutil.rmtree(out_dir / split, ignore_errors=True)
    for entry in manifest.files:
        target = out_dir / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(entry["source"], "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2))
    return manifest
