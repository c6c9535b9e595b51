"""Training speed and accuracy of faceweb's pipeline on a folder-per-person dataset.

    python bench/train_speed.py --dataset ../shared/datasets/lfw_dev --epochs 2
    python bench/train_speed.py --dataset ../shared/datasets/lfw_dev --compare-baseline

Splits each person's photos deterministically into train/ and val/ (symlinks in a temp
folder, the split of bench/baseline.py). Alone, it runs training.ml.train.fit on the whole
photos and prints one line per epoch and a summary line. bench/accuracy.py measures
accuracy on face crops, as the app trains.

--compare-baseline runs the reference recipe (bench/baseline.py) and faceweb in this one
process, on the same split and from the same random initial weights (seed), in five runs:

1. baseline, all layers, 224 px, --baseline-epochs (20, the recipe) on whole photos: its
   best validation accuracy and the seconds to reach it, and its images/s;
2. faceweb's default TrainConfig (random weights) on face crops made by training.ml.faces
   as the app makes them, --epochs: the seconds to reach the baseline's best accuracy,
   divided by the wall time of the baseline's whole run (and, printed beside it, by the
   seconds the baseline took to reach its own best: the stricter reading). Its
   clock includes detecting and cropping the faces and writing the crops; a validation
   photo with no face found counts as a miss;
3. baseline, layer4 + fc, 224 px, --speed-epochs: images/s. The frozen layers are random
   (both sides start from random weights): the same arithmetic as frozen ImageNet layers;
4. faceweb, all layers, 224 px, whole photos, "light" augmentation (flip, rotation, zoom,
   shift: the nearest to the recipe's flip and rotation), --speed-epochs: images/s;
5. faceweb, layer4 + fc, 224 px, whole photos, light augmentation, --partial-epochs (by
   default the epochs of a default job, over which the cost of fit's cache of frozen
   features is spread): images/s, the cache's building counted in epoch 1;
6. faceweb's default, the pretrained face network, on aligned chips: the seconds from the
   start of aligning the faces to the end of training, and its top-1 on the validation
   photos (runs 2-5 are the ResNet18 pipeline from random weights).

Images/s are steady-state figures: the mean over the epochs after the first (the first
pays for worker start-up and kernel selection), except run 5, which counts every epoch
including the cache building, so the cache's cost is never hidden. Peak resident memory
is this process's VmHWM over each run, reset before it (/proc/self/clear_refs); the
baseline's two DataLoader worker processes are not counted, which favours the baseline.

The last line is: speedup_img_s=<x> partial_speedup_img_s=<y> time_to_baseline_acc_ratio=<z>
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import math
import re
import sys
import tempfile
import time
from pathlib import Path

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import (  # noqa: E402
    FaceCropper,
    link_split,
    split_dataset,
    train_reference_recipe,
    write_crops,
)
from training.ml.config import TrainConfig  # noqa: E402
from training.ml.train import EpochStats, fit  # noqa: E402

SPEED_IMAGE_SIZE = 224  # the recipe's


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
    comparison = parser.add_argument_group("--compare-baseline")
    comparison.add_argument("--compare-baseline", action="store_true")
    comparison.add_argument("--baseline-epochs", type=int, default=20)
    comparison.add_argument("--speed-epochs", type=int, default=3, help="runs 3 and 4")
    comparison.add_argument("--partial-epochs", type=int, default=TrainConfig.epochs, help="run 5")
    args = parser.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        parser.error("--val-fraction must be in [0, 1)")
    if args.compare_baseline and args.val_fraction == 0:
        parser.error("--compare-baseline needs validation photos")
    return args


def print_epoch(stats: EpochStats) -> None:
    val = "n/a" if stats.val_accuracy is None else f"{stats.val_accuracy:.4f}"
    print(
        f"epoch={stats.epoch} loss={stats.loss:.4f} train_acc={stats.train_accuracy:.4f} "
        f"val_acc={val} images_per_s={stats.images_per_second:.1f} "
        f"seconds={stats.seconds:.1f}",
        flush=True,
    )


def print_baseline_epoch(epoch, loss, val_accuracy, seconds, images_per_second) -> None:
    print(
        f"epoch={epoch} loss={loss:.4f} val_acc={val_accuracy:.4f} "
        f"images_per_s={images_per_second:.1f} seconds={seconds:.1f}",
        flush=True,
    )


def overall_speed(speeds: list[float]) -> float:
    """Images/s over epochs of the same number of images, given each epoch's images/s."""
    return len(speeds) / sum(1 / speed for speed in speeds)


def steady_speed(speeds: list[float]) -> float:
    """Images/s over the epochs after the first (all of them when there is only one)."""
    return overall_speed(speeds[1:] or speeds)


class PeakMemory:
    """Peak resident memory of this process during a with-block, in MiB.

    The kernel's high-water mark is reset on entry (after freeing what can be freed), so
    an earlier, larger run does not hide a later one. Where that reset is refused, the
    peak is the process's since it started, and exact is False.
    """

    def __enter__(self):
        gc.collect()
        _malloc_trim()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.exact = True
        except OSError:
            self.exact = False
        self.start_mib = _status_mib("VmRSS")
        return self

    def __exit__(self, *exc_info):
        self.peak_mib = _status_mib("VmHWM")


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        kib = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE).group(1)
    return int(kib) / 1024


def _malloc_trim():
    # Hands memory freed by the previous run back to the system, so its pages do not count
    # towards the next run's peak.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run(label: str, runs: dict, train):
    """Run train() under PeakMemory, announcing it; keeps (result, memory) in runs[label]."""
    print(f"== {label}", flush=True)
    with PeakMemory() as memory:
        result = train()
    note = "" if memory.exact else " (not reset: process-wide peak)"
    print(
        f"peak_rss_mb={memory.peak_mib:.0f} start_rss_mb={memory.start_mib:.0f}{note}",
        flush=True,
    )
    runs[label] = (result, memory)
    return result


def compare_with_baseline(args) -> None:
    """The five runs of the module docstring, then the figures they give."""
    split = split_dataset(args.dataset, args.val_fraction, args.seed, args.max_per_person)
    val_photos = sum(len(photos) for photos in split.val.values())
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="faceweb-bench-") as tmp:
        photos = link_split(split, Path(tmp) / "photos")
        baseline = run(
            "baseline: all layers, 224 px, whole photos",
            runs,
            lambda: train_reference_recipe(
                photos, args.baseline_epochs, args.seed, on_epoch=print_baseline_epoch
            ),
        )
        default = run(
            "faceweb: default config (random weights), face crops",
            runs,
            lambda: train_on_face_crops(args, split, Path(tmp) / "faces"),
        )
        partial_baseline = run(
            "baseline: layer4+fc (random frozen layers), 224 px, whole photos",
            runs,
            lambda: train_reference_recipe(
                photos,
                args.speed_epochs,
                args.seed,
                on_epoch=print_baseline_epoch,
                trained_layers="layer4",
            ),
        )
        speed_config = TrainConfig(
            architecture="resnet18",
            pretrained="none",
            image_size=SPEED_IMAGE_SIZE,
            augmentation="light",
            seed=args.seed,
            batch_size=args.batch_size,
        )
        all_layers = run(
            "faceweb: all layers, 224 px, whole photos",
            runs,
            lambda: fit(
                photos,
                _replace(speed_config, fine_tune_from="all", epochs=args.speed_epochs),
                on_epoch=print_epoch,
            ),
        )
        partial = run(
            "faceweb: layer4+fc (random frozen layers), 224 px, whole photos",
            runs,
            lambda: fit(
                photos,
                _replace(speed_config, fine_tune_from="layer4", epochs=args.partial_epochs),
                on_epoch=print_epoch,
            ),
        )
        face = run(
            "faceweb: the default face network, aligned chips",
            runs,
            lambda: train_face_network(args, split, Path(tmp) / "chips"),
        )
    print(
        f"face_network: seconds={face['seconds']:.1f} (chips {face['crop_seconds']:.1f}, "
        f"training {face['fit'].seconds:.1f}) top1={face['top1']:.4f} "
        f"(of {val_photos} val photos) "
        f"ratio_to_baseline_run={face['seconds'] / baseline.seconds:.3f}",
        flush=True,
    )
    print_comparison(baseline, default, partial_baseline, all_layers, partial, runs, val_photos)


def train_face_network(args, split, chips: Path) -> dict:
    """Align the faces of the split as the app does and fit the default configuration
    (the pretrained face network). Returns the fit result, the whole time (aligning
    included) and the top-1 over every validation photo (no face found: a miss)."""
    started = time.perf_counter()
    cropper = FaceCropper("chip")
    write_crops(split.train, cropper, chips / "train")
    missing_val = write_crops(split.val, cropper, chips / "val")
    crop_seconds = time.perf_counter() - started
    result = fit(chips, TrainConfig(seed=args.seed), on_epoch=print_epoch)
    seconds = time.perf_counter() - started
    val_photos = sum(len(photos) for photos in split.val.values())
    top1 = round(result.best_val_accuracy * (val_photos - missing_val)) / val_photos
    return {"fit": result, "seconds": seconds, "crop_seconds": crop_seconds, "top1": top1}


def train_on_face_crops(args, split, faces: Path) -> dict:
    """Crop the faces of the split as the app does and fit faceweb's default config on them.

    Returns the fit result, the seconds from the start of cropping to the end of each
    epoch, and each epoch's validation accuracy over every validation photo (one with no
    face found is a miss).
    """
    started = time.perf_counter()
    cropper = FaceCropper()
    missing_train = write_crops(split.train, cropper, faces / "train")
    missing_val = write_crops(split.val, cropper, faces / "val")
    crop_seconds = time.perf_counter() - started
    val_photos = sum(len(photos) for photos in split.val.values())
    print(
        f"face crops: seconds={crop_seconds:.1f} no_face_train={missing_train} (left out) "
        f"no_face_val={missing_val} (misses)",
        flush=True,
    )
    config = TrainConfig(
        architecture="resnet18", pretrained="none", seed=args.seed, epochs=args.epochs
    )
    ended, accuracy = [], []

    def on_epoch(stats: EpochStats):
        ended.append(time.perf_counter() - started)
        found = val_photos - missing_val
        accuracy.append(round(stats.val_accuracy * found) / val_photos)
        print_epoch(stats)

    result = fit(faces, config, on_epoch=on_epoch)
    return {"fit": result, "ended": ended, "accuracy": accuracy, "crop_seconds": crop_seconds}


def print_comparison(baseline, default, partial_baseline, all_layers, partial, runs, val_photos):
    baseline_speed = steady_speed(baseline.epoch_images_per_second)
    faceweb_speed = steady_speed([s.images_per_second for s in all_layers.history])
    partial_baseline_speed = steady_speed(partial_baseline.epoch_images_per_second)
    partial_speed = overall_speed([s.images_per_second for s in partial.history])
    reached = [
        seconds
        for seconds, accuracy in zip(default["ended"], default["accuracy"], strict=True)
        if accuracy >= baseline.best_val_accuracy
    ]
    faceweb_seconds = reached[0] if reached else math.inf
    best_default = max(default["accuracy"])
    baseline_peak = _side_peak(runs, "baseline")
    faceweb_peak = _side_peak(runs, "faceweb")
    print(
        f"baseline: images_per_s={baseline_speed:.1f} "
        f"partial_images_per_s={partial_baseline_speed:.1f} "
        f"best_val_acc={baseline.best_val_accuracy:.4f} best_epoch={baseline.best_epoch} "
        f"seconds_to_best={baseline.seconds_to_best:.1f} peak_rss_mb={baseline_peak:.0f}"
    )
    print(
        f"faceweb: images_per_s={faceweb_speed:.1f} partial_images_per_s={partial_speed:.1f} "
        f"(cached_views={partial.cached_views}, cache built in epoch 1) "
        f"best_val_acc={best_default:.4f} (of {val_photos} val photos) "
        f"best_epoch={default['accuracy'].index(best_default) + 1} "
        f"seconds_to_baseline_acc={faceweb_seconds:.1f} "
        f"(crops {default['crop_seconds']:.1f}) peak_rss_mb={faceweb_peak:.0f}"
    )
    print(f"memory: faceweb_peak/baseline_peak={faceweb_peak / baseline_peak:.2f}")
    # The measure is the baseline's wall time, its whole run; the time the
    # baseline took to reach its own best is the stricter reading, printed beside it.
    print(
        f"time to the baseline's best: faceweb {faceweb_seconds:.1f} s, baseline run "
        f"{baseline.seconds:.1f} s (its best reached at {baseline.seconds_to_best:.1f} s): "
        f"ratio_to_baseline_run={faceweb_seconds / baseline.seconds:.3f} "
        f"ratio_to_baseline_best={faceweb_seconds / baseline.seconds_to_best:.3f}"
    )
    print(
        f"speedup_img_s={faceweb_speed / baseline_speed:.2f} "
        f"partial_speedup_img_s={partial_speed / partial_baseline_speed:.2f} "
        f"time_to_baseline_acc_ratio={faceweb_seconds / baseline.seconds:.3f}",
        flush=True,
    )


def _side_peak(runs: dict, side: str) -> float:
    return max(memory.peak_mib for label, (_, memory) in runs.items() if label.startswith(side))


def _replace(config: TrainConfig, **changes) -> TrainConfig:
    return TrainConfig.from_dict({**config.to_dict(), **changes})


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.compare_baseline:
        compare_with_baseline(args)
        return
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
