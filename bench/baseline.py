"""The reference recipe every benchmark compares against, and the dataset split (and its
face crops) that the benchmarks share.

The recipe is implemented plainly, exactly as DESIGN.md ("The baseline every benchmark
compares against") defines it, so that faceweb's figures are always shown beside it,
measured in the same run, on the same split and from the same initial weights:
ImageFolder over whole photos, a DataLoader (batch 32, 2 workers) decoding and
transforming every image in every epoch, resize to 224, flip, +-10 degree rotation,
ImageNet normalisation, ResNet18 with a new fc, cross-entropy, Adam 1e-4, fp32, best
validation accuracy kept; all layers trained from random weights, layer4 and fc from
pretrained ones.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, models
from torchvision import transforms as T

from training.ml.faces import align_face, choose_subject, crop_face, detect_faces

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm"}


@dataclass
class Split:
    """Photos per person: known people's train and val photos, held-back people's photos."""

    train: dict[str, list[Path]] = field(default_factory=dict)
    val: dict[str, list[Path]] = field(default_factory=dict)
    unknown: dict[str, list[Path]] = field(default_factory=dict)
    # Known people's photos never enrolled (enrolment_split only): what identification is
    # measured on, so neither training nor calibration has seen them.
    test: dict[str, list[Path]] = field(default_factory=dict)


def person_photos(dataset: Path, max_per_person=None, seed: int = 0) -> dict[str, list[Path]]:
    """{person folder name: photo paths} of a folder-per-person dataset, persons sorted.

    With max_per_person, a seeded random choice of that many photos per person. Persons
    with no photo are left out.
    """
    people = {}
    for person in sorted(p for p in Path(dataset).iterdir() if p.is_dir()):
        photos = sorted(
            p
            for p in person.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        random.Random(f"{seed}:{person.name}").shuffle(photos)
        if photos[:max_per_person]:
            people[person.name] = photos[:max_per_person]
    return people


def split_dataset(
    dataset: Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_per_person=None,
    unknown_people: int = 0,
    unknown_dataset: Path | None = None,
) -> Split:
    """Split a folder-per-person dataset deterministically (by names, seed and fractions).

    unknown_people persons, chosen at random from seed, are held back entirely (their
    photos go to Split.unknown); the photos of unknown_dataset, if given, too. Every other
    person gives round(val_fraction * photos) photos, at least 1, to validation, and keeps
    at least one for training.
    """
    people = person_photos(dataset, max_per_person, seed)
    held_back = set(random.Random(f"{seed}:unknown").sample(sorted(people), unknown_people))
    split = Split()
    for person, photos in people.items():
        if person in held_back:
            split.unknown[person] = photos
            continue
        n_val = min(max(1, round(len(photos) * val_fraction)), len(photos) - 1)
        if val_fraction == 0:
            n_val = 0
        split.val[person], split.train[person] = photos[:n_val], photos[n_val:]
    if unknown_dataset is not None:
        for person, photos in person_photos(unknown_dataset, max_per_person, seed).items():
            split.unknown[f"unknown:{person}"] = photos
    return split


def enrolment_split(
    dataset: Path,
    seed: int = 0,
    shots: int | None = None,
    test_fraction: float = 0.2,
    unknown_people: int = 0,
    unknown_dataset: Path | None = None,
    val_fraction: float = 0.2,
) -> Split:
    """Split as a team would meet it: each known person enrols shots photos (or, without
    shots, all but round(test_fraction * photos), at least 1), and is tested on the others;
    the enrolled photos are split into train and val as the app's export does (val:
    round(val_fraction * n), at least 1, when n >= 2). People with fewer photos than
    shots + 1 are left out. Held-back people as in split_dataset. Deterministic.
    """
    base = split_dataset(dataset, 0.0, seed, None, unknown_people, unknown_dataset)
    split = Split(unknown=base.unknown)
    for person, photos in base.train.items():
        n_test = len(photos) - shots if shots else max(1, round(len(photos) * test_fraction))
        if shots and n_test < 1:
            continue
        enrolled, split.test[person] = photos[n_test:], photos[:n_test]
        split.val[person], split.train[person] = split_as_exported(enrolled, val_fraction)
    return split


def split_as_exported(photos: list, val_fraction: float = 0.2) -> tuple[list, list]:
    """(val, train) of one person's photos as the app's export splits them: round(fraction
    * n) for validation, at least 1, and at least 1 left for training."""
    n_val = min(len(photos) - 1, max(1, round(len(photos) * val_fraction)))
    return photos[:n_val], photos[n_val:]


def link_split(split: Split, out: Path) -> Path:
    """Symlink the known photos into out/train/<person>/ and out/val/<person>/; returns out."""
    for name, part in (("train", split.train), ("val", split.val)):
        for person, photos in part.items():
            folder = out / name / person
            folder.mkdir(parents=True, exist_ok=True)
            for photo in photos:
                (folder / photo.name).symlink_to(photo.resolve())
    return out


class FaceCropper:
    """Detects and crops the subject's face of each photo once, whatever the seed, as the
    app does on upload (training.ml.faces): the margin crop, or with kind "chip" the
    aligned chip the face network takes. pick "subject" takes the face enrolment takes on
    its own (none when two are alike); "picked" that, or when several faces are alike the
    one nearest the photo's centre, as a user's *Pick the face* click would (the LFW label
    names the centred person); "centre" the face nearest the centre, for photos being
    identified (the app identifies every face; a benchmark scores the labelled one)."""

    def __init__(self, kind: str = "margin", pick: str = "subject"):
        self.kind = kind
        self.pick = pick
        self.crops: dict[Path, Image.Image | None] = {}

    def __call__(self, path: Path) -> Image.Image | None:
        if path not in self.crops:
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
            faces = detect_faces(image)
            subject = choose_subject(faces)
            if self.pick == "centre" or (self.pick == "picked" and subject is None):
                subject = nearest_the_centre(faces, image.size)
            if subject is None:
                self.crops[path] = None
            elif self.kind == "chip":
                self.crops[path] = align_face(image, subject.box)[1]
            else:
                self.crops[path] = crop_face(image, subject.box)
        return self.crops[path]


def nearest_the_centre(faces, size):
    if not faces:
        return None

    def distance(face):
        x, y, w, h = face.box
        return (x + w / 2 - size[0] / 2) ** 2 + (y + h / 2 - size[1] / 2) ** 2

    return min(faces, key=distance)


def write_crops(photos_by_person: dict, cropper: FaceCropper, folder: Path) -> int:
    """Save the face crops of photos_by_person as folder/<person>/<photo>.png; returns the
    number of photos with no face found (left out)."""
    missing = 0
    for person, photos in photos_by_person.items():
        (folder / person).mkdir(parents=True, exist_ok=True)
        for photo in photos:
            crop = cropper(photo)
            if crop is None:
                missing += 1
            else:
                # The same pixels at any level; the default level took 15 of the 23 ms a
                # photo cost, time that bench/train_speed.py counts against faceweb.
                crop.save(folder / person / f"{photo.stem}.png", compress_level=1)
    return missing


@dataclass
class BaselineResult:
    """best_epoch counts from 1. epoch_images_per_second[i] is epoch i+1's training speed;
    epoch_ended[i] the seconds from the start of the call to the end of its validation."""

    best_val_accuracy: float
    best_epoch: int
    seconds: float
    images_per_second: float
    epoch_images_per_second: list[float] = field(default_factory=list)
    epoch_ended: list[float] = field(default_factory=list)

    @property
    def seconds_to_best(self) -> float:
        return self.epoch_ended[self.best_epoch - 1]


def train_reference_recipe(
    data_dir: Path,
    epochs: int = 20,
    seed: int = 0,
    pretrained: bool = False,
    on_epoch=None,
    trained_layers: str | None = None,
) -> BaselineResult:
    """Train the reference recipe on data_dir/train, validating on data_dir/val.

    Seeds torch with seed right before building the model, as fit() does, so that both
    start from the same random weights. on_epoch(epoch, loss, val_accuracy, seconds,
    images_per_second) is called after each epoch. trained_layers overrides the recipe's
    choice: "all" or "layer4" (layer4 and fc), e.g. to time the layer4 recipe from random
    weights. Returns the best validation accuracy and timings.
    """
    started = time.perf_counter()
    train_tf = T.Compose(
        [
            T.Resize((224, 224)),
            T.RandomHorizontalFlip(),
            T.RandomRotation(10),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    val_tf = T.Compose(
        [T.Resize((224, 224)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    train_set = datasets.ImageFolder(data_dir / "train", train_tf)
    val_set = datasets.ImageFolder(data_dir / "val", val_tf)
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=2)
    val_loader = DataLoader(val_set, batch_size=32, shuffle=False, num_workers=2)

    torch.manual_seed(seed)
    weights = models.ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    model = models.resnet18(weights=weights)
    model.fc = nn.Linear(model.fc.in_features, len(train_set.classes))
    if trained_layers is None:
        trained_layers = "layer4" if pretrained else "all"
    if trained_layers == "layer4":
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith(("layer4.", "fc."))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    best_accuracy, best_epoch, train_seconds, trained = -1.0, 0, 0.0, 0
    epoch_speeds, epoch_ended = [], []
    for epoch in range(1, epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        total_loss = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            trained += len(labels)
        train_seconds += time.perf_counter() - epoch_started
        epoch_speeds.append(len(train_set) / (time.perf_counter() - epoch_started))
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in val_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        accuracy = correct / len(val_set)
        if accuracy > best_accuracy:
            best_accuracy, best_epoch = accuracy, epoch
        epoch_ended.append(time.perf_counter() - started)
        if on_epoch is not None:
            seconds = time.perf_counter() - epoch_started
            on_epoch(epoch, total_loss / len(train_set), accuracy, seconds, epoch_speeds[-1])
    return BaselineResult(
        best_val_accuracy=best_accuracy,
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
        images_per_second=trained / train_seconds,
        epoch_images_per_second=epoch_speeds,
        epoch_ended=epoch_ended,
    )
