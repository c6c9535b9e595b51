"""Training speed and accuracy of faceweb's pipeline on a folder-per-person dataset.

    python bench/train_speed.py --dataset ../shared/datasets/lfw_dev --epochs 2

Splits each person's photos deterministically into train/ and val/ (symlinks in a temp
folder, the split of bench/baseline.py), runs training.ml.train.fit on the whole photos
and prints one line per epoch and a summary line. bench/accuracy.py measures accuracy on
face crops, as the app trains.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import link_split, split_dataset  # noqa: E402
from training.ml.config import TrainConfig  # noqa: E402
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
    parser.add_argument("--precision", default=TrainConfig.precision, help="auto, bf16, fp32")
    parser.add_argument("--optimizer", default=TrainConfig.optimizer)
    parser.add_argument("--schedule", default=TrainConfig.schedule)
    args = parser.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        parser.error("--val-fraction must be in [0, 1)")
    return args


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
        precision=args.precision,
        optimizer=args.optimizer,
        schedule=args.schedule,
    )
    with tempfile.TemporaryDirectory(prefix="faceweb-bench-") as tmp:
        split = split_dataset(args.dataset, args.val_fraction, args.seed, args.max_per_person)
        result = fit(link_split(split, Path(tmp)), config, on_epoch=print_epoch)
    best = "n/a" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.4f}"
    mean_speed = sum(s.images_per_second for s in result.history) / len(result.history)
    print(f"best_val_acc={best} mean_images_per_s={mean_speed:.1f}")


if __name__ == "__main__":
    main()
