"""Loading a train/<class>/, val/<class>/ folder tree into memory, as batches of tensors."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageOps

from training.ml.transforms import to_pixels, to_rgb

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm"}


class InMemoryBatches:
    """Decoded images kept as one uint8 tensor, served in batches of (pixels, labels).

    pixels is N x 3 x S x S uint8 and labels N int64. Each pass over it yields batches of
    batch_size (the last may be smaller), shuffled with generator when shuffle is True.
    Transforms are not applied here: the training loop augments whole batches at once.
    """

    def __init__(self, pixels, labels, batch_size: int, shuffle: bool, generator=None):
        self.pixels = pixels
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        """The number of batches per pass."""
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        count = len(self.labels)
        order = torch.randperm(count, generator=self.generator) if self.shuffle else None
        for start in range(0, count, self.batch_size):
            if order is None:
                chosen = slice(start, start + self.batch_size)
            else:
                chosen = order[start : start + self.batch_size]
            yield self.pixels[chosen], self.labels[chosen]


def load_data(data_dir, image_size: int, batch_size: int, seed: int):
    """Read data_dir/train/<class>/* and data_dir/val/<class>/* into InMemoryBatches.

    Returns (train_batches, val_batches, classes): classes are the sorted folder names of
    train/, labels index into them; val_batches is None when there are no validation images
    (val/ may be missing, empty, or lack some classes). Every image is decoded and resized
    to image_size x image_size once, here: data this small fits in memory many times over,
    and decoding it again in every epoch would cost more than training on it. The train
    batches are shuffled with a generator seeded by seed.

    Raises ValueError when there are fewer than 2 classes, a class has no training image,
    val/ names a class train/ does not have, or an image cannot be decoded.
    """
    data_dir = Path(data_dir)
    classes = find_classes(data_dir / "train")
    train_pixels, train_labels = read_images(data_dir / "train", classes, image_size)
    val_pixels, val_labels = read_images(data_dir / "val", classes, image_size)
    generator = torch.Generator().manual_seed(seed)
    train_batches = InMemoryBatches(
        train_pixels, train_labels, batch_size, shuffle=True, generator=generator
    )
    val_batches = None
    if len(val_labels):
        val_batches = InMemoryBatches(val_pixels, val_labels, batch_size, shuffle=False)
    return train_batches, val_batches, classes


def find_classes(train_dir: Path) -> list[str]:
    """Sorted class folder names under train_dir; ValueError unless each has an image."""
    if not train_dir.is_dir():
        raise ValueError(f"no training folder at {train_dir}")
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(
            f"training needs at least 2 classes (one folder each) in {train_dir}, "
            f"found {len(classes)}"
        )
    empty = [name for name in classes if not _image_files(train_dir / name)]
    if empty:
        raise ValueError(f"these classes have no training image: {', '.join(empty)}")
    return classes


def read_images(split_dir: Path, classes: list[str], image_size: int):
    """Decode every image of split_dir/<class>/ into (pixels, labels) tensors.

    pixels is N x 3 x image_size x image_size uint8 (see transforms.to_pixels), labels N
    int64 indices into classes; both empty when split_dir does not exist or has no image.
    """
    empty = torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
    if not split_dir.is_dir():
        return empty, torch.empty(0, dtype=torch.int64)
    strangers = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in classes)
    if strangers:
        raise ValueError(
            f"{split_dir} has classes that train/ does not have: {', '.join(strangers)}"
        )
    samples = [
        (to_pixels(decode_image(path), image_size), label)
        for label, name in enumerate(classes)
        for path in _image_files(split_dir / name)
    ]
    if not samples:
        return empty, torch.empty(0, dtype=torch.int64)
    pixels = torch.stack([pixels for pixels, _ in samples])
    return pixels, torch.tensor([label for _, label in samples], dtype=torch.int64)


def decode_image(path: Path) -> Image.Image:
    """Open path as an upright RGB image; ValueError when it cannot be decoded."""
    try:
        with Image.open(path) as opened:
            image = to_rgb(ImageOps.exif_transpose(opened))
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    return image


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )
