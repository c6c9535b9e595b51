"""Training speed and accuracy of faceweb's pipeline on a folder-per-person dataset.

    python bench/train_speed.py --dataset ../shared/datasets/lfw_dev --epochs 2

Splits each person's photos deterministically into train/ and val/ (symlinks in a temp
folder), runs training.ml.train.fit and prints one line per epoch and a summary line.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.ml.config import TrainConfig  # noqa: E402
from training.ml.data import IMAGE_EXTENSIONS  # noqa: E402
from training.ml.train import EpochStats, fit  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="folder of <person>/ folders")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-per-person", type=int, default=None)
    parser.add_argument("--pretrained", default="none", help="imagenet, none or a path")
    parser.add_argument("--fine-tune-from", default="auto")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--image-size", type=int, default=TrainConfig.image_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--augmentation", default=TrainConfig.augmentation)
    args = parser.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        parser.error("--val-fraction must be in [0, 1)")
    return args


def split_dataset(dataset: Path, out: Path, val_fraction: float, seed: int, max_per_person):
    """Symlink each person's photos into out/train/<person>/ and out/val/<person>/.

    The split depends only on the file names, seed and fractions. A person keeps at least
    one training photo; persons with no photo are skipped.
    """
    for person in sorted(p for p in dataset.iterdir() if p.is_dir()):
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        random.Random(f"{seed}:{person.name}").shuffle(photos)
        photos = photos[:max_per_person]
        if not photos:
            continue
        n_val = min(round(len(photos) * val_fraction), len(photos) - 1)
        for split, chosen in (("val", photos[:n_val]), ("train", photos[n_val:])):
            folder = out / split / person.name
            folder.mkdir(parents=True, exist_ok=True)
            for photo in chosen:
                (folder / photo.name).symlink_to(photo.resolve())


def print_epoch(stats: EpochStats) -> None:
    val = "n/a" if stats.val_accuracy is None else f"{stats.val_accuracy:.4f}"
    print(
        f"epoch={stats.epoch} loss={stats.loss:.4f} train_acc={stats.train_accuracy:.4f} "
        f"val_acc={val} images_per_s={stats.images_per_second:.1f} "
        f"seconds={stats.seconds:.1f}",
        flush=True,
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    config = TrainConfig(
        architecture="resnet18",
        fine_tune_from=args.fine_tune_from,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        image_size=args.image_size,
        augmentation=args.augmentation,
        seed=args.seed,
        pretrained=args.pretrained,
    )
    with tempfile.TemporaryDirectory(prefix="faceweb-bench-") as tmp:
        split_dataset(args.dataset, Path(tmp), args.val_fraction, args.seed, args.max_per_person)
        result = fit(tmp, config, on_epoch=print_epoch)
    best = "n/a" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.4f}"
    mean_speed = sum(s.images_per_second for s in result.history) / len(result.history)
    print(f"best_val_acc={best} mean_images_per_s={mean_speed:.1f}")


if __name__ == "__main__":
    main()
