"""Identification accuracy and "unknown" detection of faceweb on a folder-per-person dataset.

    python bench/accuracy.py --dataset ../shared/datasets/lfw_dev --unknown-people 5 \\
        --seeds 0,1,2 [--compare-baseline]

Per seed: splits the dataset deterministically (20% of each known person's photos, at
least one, for validation; --unknown-people persons held back entirely, or the persons of
--unknown), detects and crops faces with training.ml.faces as faceweb does, trains with
training.ml.train.fit from random weights, and identifies the validation and held-back
photos through Predictor.identify. A training photo with no face found is left out, as the
app does; a validation photo with no face counts as a miss and as not accepted, a held-back
person's photo with no face as not accepted (nobody is named). --compare-baseline also
trains the reference recipe (bench/baseline.py) on the whole photos of the same split.

The last line is: top1=<a> baseline_top1=<b> unknown_false_accept=<c> known_accept=<d>
(means over seeds, at the "normal" operating point).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.baseline import (  # noqa: E402
    FaceCropper,
    link_split,
    split_dataset,
    train_reference_recipe,
    write_crops,
)
from training.ml import calibrate as cal  # noqa: E402
from training.ml.config import IMAGENET_MEAN, IMAGENET_STD, UNKNOWN_SCORES, TrainConfig  # noqa: E402
from training.ml.model import build_model, embed_and_classify  # noqa: E402
from training.ml.predictor import Predictor  # noqa: E402
from training.ml.train import EpochStats, fit  # noqa: E402

POINTS = tuple(cal.OPERATING_POINTS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="folder of <person>/ folders")
    unknown = parser.add_mutually_exclusive_group()
    unknown.add_argument("--unknown", type=Path, help="folder of people never trained on")
    unknown.add_argument("--unknown-people", type=int, default=0, help="persons to hold back")
    parser.add_argument("--max-per-person", type=int, default=None)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", help="comma-separated seeds; overrides --seed")
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--compare-baseline", action="store_true")
    parser.add_argument("--baseline-epochs", type=int, default=20)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a TrainConfig field, e.g. --set image_size=96 (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    if not 0 < args.val_fraction < 1:
        parser.error("--val-fraction must be in (0, 1)")
    args.seed_list = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    return args


def make_config(args, seed: int) -> TrainConfig:
    fields = {"pretrained": "none", "seed": seed}
    if args.epochs is not None:
        fields["epochs"] = args.epochs
    for item in args.set:
        name, _, text = item.partition("=")
        default = getattr(TrainConfig, name, None)
        fields[name] = type(default)(text) if default is not None else text
    return TrainConfig.from_dict(fields)


def run_seed(args, seed: int, cropper: FaceCropper) -> dict:
    """Train and measure once; returns the figures of this seed."""
    split = split_dataset(
        args.dataset,
        args.val_fraction,
        seed,
        args.max_per_person,
        args.unknown_people,
        args.unknown,
    )
    config = make_config(args, seed)
    with tempfile.TemporaryDirectory(prefix="faceweb-accuracy-") as tmp:
        data_dir = Path(tmp)
        missing_train = write_crops(split.train, cropper, data_dir / "train")
        write_crops(split.val, cropper, data_dir / "val")
        started = time.perf_counter()
        result = fit(data_dir, config, on_epoch=None if args.quiet else print_epoch)
        seconds = time.perf_counter() - started
    classes = result.classes
    model = build_model(config.architecture, len(classes), "none", "all")
    model.load_state_dict(result.state_dict)
    predictor = Predictor(
        model,
        classes,
        config.image_size,
        IMAGENET_MEAN,
        IMAGENET_STD,
        temperature=result.calibration["temperature"],
        calibration=result.calibration,
    )
    val = [(cropper(p), classes.index(person)) for person, ps in split.val.items() for p in ps]
    unknown = [cropper(p) for ps in split.unknown.values() for p in ps]
    figures = measure(predictor, val, unknown)
    figures.update(
        seconds=seconds,
        best_epoch=result.best_epoch,
        missing_train=missing_train,
        missing_val=sum(crop is None for crop, _ in val),
        missing_unknown=sum(crop is None for crop in unknown),
        calibration=cal.calibration_summary(result.calibration),
        score_methods=compare_score_methods(predictor, split, cropper, classes, val, unknown),
    )
    if args.compare_baseline:
        with tempfile.TemporaryDirectory(prefix="faceweb-baseline-") as tmp:
            baseline = train_reference_recipe(
                link_split(split, Path(tmp)), args.baseline_epochs, seed
            )
        figures.update(baseline_top1=baseline.best_val_accuracy, baseline_seconds=baseline.seconds)
    return figures


def measure(predictor: Predictor, val: list, unknown: list) -> dict:
    """top1/top5 over every validation photo, and per operating point the share of known
    validation photos accepted and of held-back people's photos wrongly named."""
    val_faces = [crop for crop, _ in val if crop is not None]
    val_labels = [label for crop, label in val if crop is not None]
    unknown_faces = [crop for crop in unknown if crop is not None]
    figures = {"top1": 0.0, "top5": 0.0}
    for point in POINTS:
        known = predictor.identify(val_faces, top_k=5, strictness=point) if val_faces else []
        strangers = predictor.identify(unknown_faces, strictness=point) if unknown_faces else []
        if point == "normal":
            pairs = list(zip(known, val_labels, strict=True))
            # Divided by every validation photo: one with no face found is a miss.
            figures["top1"] = sum(r["top_k"][0][0] == y for r, y in pairs) / max(1, len(val))
            figures["top5"] = sum(y in dict(r["top_k"]) for r, y in pairs) / max(1, len(val))
        figures[f"known_accept_{point}"] = sum(r["accepted"] for r in known) / max(1, len(val))
        figures[f"unknown_false_accept_{point}"] = (
            sum(r["accepted"] for r in strangers) / len(unknown) if unknown else math.nan
        )
    return figures


def compare_score_methods(predictor, split, cropper, classes, val, unknown) -> dict:
    """False accepts of each score method at its own calibrated "normal" threshold, to
    choose TrainConfig.unknown_score by measurement."""
    train = [(cropper(p), classes.index(person)) for person, ps in split.train.items() for p in ps]
    train = [(crop, label) for crop, label in train if crop is not None]
    val = [(crop, label) for crop, label in val if crop is not None]
    unknown = [crop for crop in unknown if crop is not None]
    if not val or not unknown:
        return {}
    train_e, _ = _outputs(predictor, [c for c, _ in train])
    val_e, val_l = _outputs(predictor, [c for c, _ in val])
    unknown_e, unknown_l = _outputs(predictor, unknown)
    train_y = torch.tensor([y for _, y in train])
    val_y = torch.tensor([y for _, y in val])
    methods = {}
    for method in UNKNOWN_SCORES:
        calibration = cal.calibrate(method, len(classes), val_l, val_y, val_e, train_e, train_y)
        args = (
            method,
            calibration["temperature"],
            calibration["centroids"],
            calibration["embedding_centre"],
        )
        known_scores = cal.unknown_scores(val_l, val_e, *args)
        unknown_scores = cal.unknown_scores(unknown_l, unknown_e, *args)
        methods[method] = {
            point: float((unknown_scores >= calibration["thresholds"][point]).float().mean())
            for point in POINTS
        }
        methods[method]["auroc"] = _auroc(known_scores, unknown_scores)
    return methods


def _outputs(predictor, crops):
    batch = torch.stack([predictor.transform(crop) for crop in crops])
    with torch.inference_mode():
        return embed_and_classify(predictor.model, batch)


def _auroc(known, unknown) -> float:
    """Chance that a known face scores higher than an unknown one."""
    greater = (known[:, None] > unknown[None, :]).float().mean()
    equal = (known[:, None] == unknown[None, :]).float().mean()
    return float(greater + equal / 2)


def print_epoch(stats: EpochStats) -> None:
    val = "n/a" if stats.val_accuracy is None else f"{stats.val_accuracy:.4f}"
    print(
        f"  epoch={stats.epoch} loss={stats.loss:.4f} train_acc={stats.train_accuracy:.4f} "
        f"val_acc={val} images_per_s={stats.images_per_second:.1f} seconds={stats.seconds:.1f}",
        flush=True,
    )


def print_seed(seed: int, figures: dict) -> None:
    points = " ".join(
        f"{point}: known_accept={figures[f'known_accept_{point}']:.3f} "
        f"unknown_false_accept={figures[f'unknown_false_accept_{point}']:.3f};"
        for point in POINTS
    )
    print(
        f"seed={seed} top1={figures['top1']:.4f} top5={figures['top5']:.4f} "
        f"baseline_top1={figures.get('baseline_top1', math.nan):.4f} "
        f"seconds={figures['seconds']:.1f} baseline_seconds="
        f"{figures.get('baseline_seconds', math.nan):.1f} best_epoch={figures['best_epoch']}"
    )
    print(f"  {points}")
    print(
        f"  no face found: train={figures['missing_train']} (left out) "
        f"val={figures['missing_val']} (miss, not accepted) "
        f"unknown={figures['missing_unknown']} (not accepted)"
    )
    calibration = figures["calibration"]
    print(
        f"  calibration: method={calibration['method']} "
        f"temperature={calibration['temperature']:.3f} thresholds={calibration['thresholds']}"
    )
    for method, rates in figures["score_methods"].items():
        shown = " ".join(f"{key}={value:.3f}" for key, value in rates.items())
        print(f"  score={method}: unknown_false_accept {shown}")
    sys.stdout.flush()


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def main(argv=None) -> None:
    args = parse_args(argv)
    cropper = FaceCropper()
    results = []
    for seed in args.seed_list:
        figures = run_seed(args, seed, cropper)
        print_seed(seed, figures)
        results.append(figures)
    keys = ["top1", "top5", "seconds"] + [
        f"{kind}_{point}" for point in POINTS for kind in ("known_accept", "unknown_false_accept")
    ]
    print("mean over seeds " + " ".join(f"{k}={mean(r[k] for r in results):.4f}" for k in keys))
    baseline = mean(r["baseline_top1"] for r in results) if args.compare_baseline else math.nan
    print(
        f"top1={mean(r['top1'] for r in results):.4f} baseline_top1={baseline:.4f} "
        f"unknown_false_accept={mean(r['unknown_false_accept_normal'] for r in results):.4f} "
        f"known_accept={mean(r['known_accept_normal'] for r in results):.4f}"
    )


if __name__ == "__main__":
    main()
