"""Identification accuracy and "unknown" detection, faceweb's default against the ResNet18
pipeline and the reference recipe, on a folder-per-person dataset.

    python bench/accuracy.py --dataset ../shared/datasets/lfw_many --shots 3 \\
        --unknown-people 100 --seeds 0,1,2 [--pipelines faceweb,resnet18] [--compare-baseline]

Per seed (bench.baseline.enrolment_split): each known person enrols --shots photos (or
all but 20%) and is tested on the others, which neither training nor calibration sees;
--unknown-people persons (or the persons of --unknown) are held back as strangers. The
enrolled photos go through what the app does: the subject's face is detected and cropped
(an aligned chip for the face network, a margin crop for a ResNet) with
training.ml.faces (where several faces are alike, the centred one, as a user's *Pick the
face* would choose), split into train/ and val/ as the export splits them, and trained
with training.ml.train.fit; the test and stranger photos are identified through
Predictor.identify. An enrolment photo with no face found is left out, as the app does;
a test photo with no face counts as a miss and as not accepted, a stranger's photo with
no face as not accepted.

Per pipeline and seed it prints top-1 (the model's first answer on the known test
photos), the shares of known test photos accepted and of strangers' photos named at the
calibrated "normal" operating point, and the share of strangers named at the threshold
that accepts exactly 95% of the known test photos (an oracle: what the embedding can do
when the threshold is right). --set FIELD=VALUE changes the faceweb pipeline's
TrainConfig (e.g. --set head=linear --set fine_tune_from=stage5). --mark-strangers marks
every other photo of each stranger "not anyone we know" (the model learns them as a
reviewer's answers teach it) and tests on the rest: strangers who come back. The last
line is, for
faceweb's pipeline: top1=<a> baseline_top1=<b> unknown_false_accept=<c> known_accept=<d>
(means over seeds; baseline_top1 needs --compare-baseline).
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
    enrolment_split,
    link_split,
    split_as_exported,
    train_reference_recipe,
    write_crops,
)
from training.ml import calibrate as cal  # noqa: E402
from training.ml.backbones import get_backbone  # noqa: E402
from training.ml.config import TrainConfig  # noqa: E402
from training.ml.embedder import embed_chips  # noqa: E402
from training.ml.model import build_model  # noqa: E402
from training.ml.predictor import Predictor  # noqa: E402
from training.ml.train import EpochStats, fit  # noqa: E402

PIPELINES = ("faceweb", "resnet18")
ORACLE_KNOWN_ACCEPT = 0.95


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="folder of <person>/ folders")
    unknown = parser.add_mutually_exclusive_group()
    unknown.add_argument("--unknown", type=Path, help="folder of people never trained on")
    unknown.add_argument("--unknown-people", type=int, default=0, help="persons to hold back")
    parser.add_argument("--shots", type=int, help="photos enrolled per person (default: 80%%)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", help="comma-separated seeds; overrides --seed")
    parser.add_argument(
        "--pipelines", default=",".join(PIPELINES), help="comma-separated: faceweb, resnet18"
    )
    parser.add_argument("--resnet-pretrained", default="none", help="imagenet, none or a path")
    parser.add_argument("--compare-baseline", action="store_true")
    parser.add_argument("--baseline-epochs", type=int, default=20)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a TrainConfig field of the faceweb pipeline (repeatable)",
    )
    parser.add_argument(
        "--mark-strangers",
        action="store_true",
        help="mark half of each stranger's photos 'not anyone we know'; test on the rest",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    args.pipeline_list = [p for p in args.pipelines.split(",") if p]
    unknown_names = set(args.pipeline_list) - set(PIPELINES)
    if unknown_names:
        parser.error(f"unknown pipelines {sorted(unknown_names)}; known: {', '.join(PIPELINES)}")
    return args


def make_config(args, pipeline: str, seed: int) -> TrainConfig:
    if pipeline == "resnet18":
        return TrainConfig(architecture="resnet18", pretrained=args.resnet_pretrained, seed=seed)
    fields = {"seed": seed}
    for item in args.set:
        name, _, text = item.partition("=")
        default = getattr(TrainConfig, name, None)
        fields[name] = type(default)(text) if default is not None else text
    return TrainConfig.from_dict(fields)


def run_pipeline(args, pipeline, split, seed, croppers) -> dict:
    """Train one pipeline on the split's enrolled photos; measure on its test photos."""
    config = make_config(args, pipeline, seed).resolved()
    crop = get_backbone(config.architecture).crop
    cropper, identified = croppers[crop, "picked"], croppers[crop, "centre"]
    train, val, skipped = usable_enrolment(split, cropper)
    with tempfile.TemporaryDirectory(prefix="faceweb-accuracy-") as tmp:
        data_dir = Path(tmp)
        write_crops(train, cropper, data_dir / "train")
        write_crops(val, cropper, data_dir / "val")
        marked, tested = strangers_seen(split, getattr(args, "mark_strangers", False))
        started = time.perf_counter()
        result = fit(
            data_dir,
            config,
            on_epoch=None if args.quiet else print_epoch,
            strangers=marked_embeddings(marked, croppers["chip", "centre"]),
        )
        seconds = time.perf_counter() - started
    predictor = make_predictor(config, result)
    classes = result.classes
    test = [
        (identified(p), classes.index(person))
        for person, ps in split.test.items()
        if person in classes
        for p in ps
    ]
    strangers = [identified(p) for p in tested]
    figures = measure(predictor, test, strangers)
    figures.update(seconds=seconds, people_skipped=len(skipped), best_epoch=result.best_epoch)
    return figures


def strangers_seen(split, mark: bool) -> tuple[list, list]:
    """(photos marked "not anyone we know", photos tested) of the split's strangers: with
    mark, every other photo of each, else none marked and all tested."""
    if not mark:
        return [], [p for photos in split.unknown.values() for p in photos]
    marked = [p for photos in split.unknown.values() for p in photos[::2]]
    tested = [p for photos in split.unknown.values() for p in photos[1::2]]
    return marked, tested


def marked_embeddings(photos, cropper):
    """The base face network's embeddings of the marked photos' faces, as the Review page
    stores them; None for none."""
    chips = [chip for chip in map(cropper, photos) if chip is not None]
    return torch.from_numpy(embed_chips(chips)) if chips else None


def make_croppers(kinds) -> dict:
    """{(crop kind, pick): FaceCropper}: what run_pipeline crops enrolled photos ("picked")
    and photos to identify ("centre") with; each photo is detected once per cropper."""
    return {
        (kind, pick): FaceCropper(kind, pick) for kind in kinds for pick in ("picked", "centre")
    }


def usable_enrolment(split, cropper):
    """The enrolled photos whose face was found, split into train and val as the app's
    export splits them; people with fewer than 2 such photos are skipped, as the app
    skips them (their test photos are then not measured). Returns (train, val, skipped)."""
    train, val, skipped = {}, {}, []
    for person in split.train:
        usable = [p for p in [*split.val[person], *split.train[person]] if cropper(p) is not None]
        if len(usable) < 2:
            skipped.append(person)
            continue
        val[person], train[person] = split_as_exported(usable)
    return train, val, skipped


def make_predictor(config, result) -> Predictor:
    backbone = get_backbone(config.architecture)
    model = build_model(config.architecture, len(result.classes), "none", "all", config.head)
    model.load_state_dict(result.state_dict)
    return Predictor(
        model,
        result.classes,
        config.image_size,
        backbone.mean,
        backbone.std,
        temperature=result.calibration["temperature"],
        calibration=result.calibration,
    )


def measure(predictor: Predictor, test: list, strangers: list) -> dict:
    """top-1 over every known test photo; at the "normal" point the shares of known test
    photos accepted and of strangers' photos named; strangers named at the threshold
    accepting ORACLE_KNOWN_ACCEPT of the known test photos."""
    faces = [crop for crop, _ in test if crop is not None]
    labels = [label for crop, label in test if crop is not None]
    stranger_faces = [crop for crop in strangers if crop is not None]
    known = predictor.identify(faces, top_k=5) if faces else []
    named = predictor.identify(stranger_faces) if stranger_faces else []
    figures = {
        "top1": sum(r["top_k"][0][0] == y for r, y in zip(known, labels, strict=True))
        / max(1, len(test)),
        "top1_class_means": class_means_top1(predictor, known, labels) / max(1, len(test)),
        "no_face": (len(test) - len(faces)) / max(1, len(test)),
        "known_accept": sum(r["accepted"] for r in known) / max(1, len(test)),
        "unknown_false_accept": sum(r["accepted"] for r in named) / len(strangers)
        if strangers
        else math.nan,
    }
    known_scores = torch.tensor(
        [r["score"] for r in known] + [-math.inf] * (len(test) - len(known))
    )
    stranger_scores = torch.tensor([r["score"] for r in named])
    oracle = cal.choose_thresholds(known_scores, {"oracle": ORACLE_KNOWN_ACCEPT})
    figures["false_accept_at_95"] = (
        float((stranger_scores >= oracle["oracle"]).sum()) / len(strangers)
        if strangers and oracle
        else math.nan
    )
    return figures


def class_means_top1(predictor, known, labels) -> int:
    """How many of the known faces the nearest class mean (no head) names right."""
    centroids = predictor.calibration.get("centroids")
    if centroids is None or not known:
        return 0
    embeddings = torch.tensor([r["embedding"] for r in known])
    nearest = (torch.nn.functional.normalize(embeddings, dim=1) @ centroids.T).argmax(dim=1)
    return int((nearest == torch.tensor(labels)).sum())


def print_epoch(stats: EpochStats) -> None:
    val = "n/a" if stats.val_accuracy is None else f"{stats.val_accuracy:.4f}"
    print(
        f"  epoch={stats.epoch} loss={stats.loss:.4f} train_acc={stats.train_accuracy:.4f} "
        f"val_acc={val} images_per_s={stats.images_per_second:.1f} seconds={stats.seconds:.1f}",
        flush=True,
    )


FIELDS = (
    "top1",
    "top1_class_means",
    "known_accept",
    "unknown_false_accept",
    "false_accept_at_95",
    "no_face",
    "seconds",
)


def line(name: str, figures: dict) -> str:
    shown = " ".join(f"{key}={figures.get(key, math.nan):.4f}" for key in FIELDS)
    return f"pipeline={name} {shown}"


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def main(argv=None) -> None:
    args = parse_args(argv)
    croppers = make_croppers(("margin", "chip"))
    results = {name: [] for name in [*args.pipeline_list, "baseline"]}
    for seed in args.seed_list:
        split = enrolment_split(
            args.dataset, seed, args.shots, 0.2, args.unknown_people, args.unknown
        )
        counts = {
            name: sum(map(len, getattr(split, name).values()))
            for name in ("train", "val", "test", "unknown")
        }
        print(
            f"seed={seed} people={len(split.test)} enrolled={counts['train'] + counts['val']} "
            f"test={counts['test']} strangers={counts['unknown']}",
            flush=True,
        )
        for pipeline in args.pipeline_list:
            figures = run_pipeline(args, pipeline, split, seed, croppers)
            results[pipeline].append(figures)
            print(
                f"seed={seed} {line(pipeline, figures)} skipped={figures['people_skipped']}",
                flush=True,
            )
        if args.compare_baseline:
            with tempfile.TemporaryDirectory(prefix="faceweb-baseline-") as tmp:
                test_split = type(split)(train={**split.train}, val=split.test)
                for person, photos in split.val.items():
                    test_split.train[person] = [*test_split.train[person], *photos]
                baseline = train_reference_recipe(
                    link_split(test_split, Path(tmp)), args.baseline_epochs, seed
                )
            figures = {"top1": baseline.best_val_accuracy, "seconds": baseline.seconds}
            results["baseline"].append(figures)
            print(f"seed={seed} {line('reference-recipe', figures)}", flush=True)
    print(f"mean over seeds {','.join(map(str, args.seed_list))}:")
    for name, runs in results.items():
        if runs:
            print(line(name, {key: mean(r.get(key, math.nan) for r in runs) for key in FIELDS}))
    default = results[args.pipeline_list[0]] if args.pipeline_list else []
    baseline_top1 = mean(r["top1"] for r in results["baseline"])
    print(
        f"top1={mean(r['top1'] for r in default):.4f} baseline_top1={baseline_top1:.4f} "
        f"unknown_false_accept={mean(r['unknown_false_accept'] for r in default):.4f} "
        f"known_accept={mean(r['known_accept'] for r in default):.4f}"
    )


if __name__ == "__main__":
    main()
