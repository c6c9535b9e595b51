"""Loading a train/<class>/, val/<class>/ folder tree into DataLoaders."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from training.ml.transforms import eval_transform, to_rgb, train_transform

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm"}


class InMemoryImages(Dataset):
    """Decoded RGB images with their labels; the transform runs per item, per epoch."""

    def __init__(self, samples: list[tuple[Image.Image, int]], transform):
        self.samples = samples
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        image, label = self.samples[index]
        return self.transform(image), label


def load_data(data_dir, image_size: int, augmentation: str, batch_size: int, seed: int):
    """Read data_dir/train/<class>/* and data_dir/val/<class>/* into DataLoaders.

    Returns (train_loader, val_loader, classes): classes are the sorted folder names of
    train/, labels index into them; val_loader is None when there are no validation images
    (val/ may be missing, empty, or lack some classes). Every image is decoded once, here,
    rather than in every epoch. The train loader shuffles with a generator seeded by seed.

    Raises ValueError when there are fewer than 2 classes, a class has no training image,
    val/ names a class train/ does not have, or an image cannot be decoded.
    """
    data_dir = Path(data_dir)
    classes = find_classes(data_dir / "train")
    train_samples = read_images(data_dir / "train", classes, image_size)
    val_samples = read_images(data_dir / "val", classes, image_size)
    generator = torch.Generator().manual_seed(seed)
    train_loader = _loader(
        InMemoryImages(train_samples, train_transform(image_size, augmentation)),
        batch_size,
        shuffle=True,
        generator=generator,
    )
    val_loader = None
    if val_samples:
        val_loader = _loader(
            InMemoryImages(val_samples, eval_transform(image_size)), batch_size, shuffle=False
        )
    return train_loader, val_loader, classes


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
    """Decode every image of split_dir/<class>/ to RGB; [] when split_dir does not exist."""
    if not split_dir.is_dir():
        return []
    strangers = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in classes)
    if strangers:
        raise ValueError(
            f"{split_dir} has classes that train/ does not have: {', '.join(strangers)}"
        )
    return [
        (decode_image(path, image_size), label)
        for label, name in enumerate(classes)
        for path in _image_files(split_dir / name)
    ]


def decode_image(path: Path, image_size: int) -> Image.Image:
    """Open path as an upright RGB image, shrunk when far larger than needed.

    Shrinking keeps memory bounded for big photos: with the shorter side at twice the
    model's input size, the later resize to image_size still only ever shrinks.
    """
    try:
        with Image.open(path) as opened:
            image = to_rgb(ImageOps.exif_transpose(opened))
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    limit = 2 * image_size
    if min(image.size) > limit:
        scale = limit / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def _loader(dataset, batch_size, shuffle, generator=None):
    # Images are already decoded, so worker processes would cost more (start-up, pickling
    # PIL images) than the per-item transforms they would parallelise.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=0,
        pin_memory=torch.cuda.is_available(),
    )
