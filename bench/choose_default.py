"""The table the face network's defaults were chosen from: head x depth, 3 seeds, datasets.

    python bench/choose_default.py --dataset ../shared/datasets/lfw_many --shots 3 \\
        --unknown-people 100 --seeds 0,1,2 [--configs NAME ...]

Runs bench/accuracy.py's faceweb pipeline once per configuration below on the same splits
(faces are detected and aligned once), and prints one line per configuration with the
means over seeds: top-1, strangers named at the calibrated "normal" point with the share of
known faces it accepted, strangers named at the threshold accepting 95% of known faces,
and training seconds. A configuration sets TrainConfig fields ("head=cosine") and
constants of training.ml ("calibrate.MARGIN_COHORT=5": the margin score's cohort of photos,
"model.WHITENED_SHARE=0": the class-means head's whitening) for its runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accuracy import FIELDS, make_croppers, mean, run_pipeline  # noqa: E402
from bench.baseline import enrolment_split  # noqa: E402

CONFIGS = {
    "class_means": ["head=class_means"],
    "class_means/cohort3": ["head=class_means", "calibrate.MARGIN_COHORT=3"],
    "class_means/cohort5": ["head=class_means", "calibrate.MARGIN_COHORT=5"],
    "class_means/cohort20": ["head=class_means", "calibrate.MARGIN_COHORT=20"],
    "class_means/weight0.7": ["head=class_means", "calibrate.MARGIN_WEIGHT=0.7"],
    "class_means/unwhitened": ["head=class_means", "model.WHITENED_SHARE=0.0"],
    "class_means/whitened0.3": ["head=class_means", "model.WHITENED_SHARE=0.3"],
    "cosine/fc": ["head=cosine", "fine_tune_from=fc"],
    "linear/fc": ["head=linear", "fine_tune_from=fc"],
    "cosine/embedding": ["head=cosine", "fine_tune_from=embedding", "epochs=20"],
    "cosine/stage5": ["head=cosine", "fine_tune_from=stage5", "epochs=10"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--shots", type=int)
    parser.add_argument("--unknown-people", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    croppers = make_croppers(("chip",))
    seeds = [int(s) for s in args.seeds.split(",")]
    splits = {
        seed: enrolment_split(args.dataset, seed, args.shots, 0.2, args.unknown_people)
        for seed in seeds
    }
    for name in args.configs:
        fields = [item for item in CONFIGS[name] if "." not in item.partition("=")[0]]
        constants = [item for item in CONFIGS[name] if item not in fields]
        run_args = argparse.Namespace(set=fields, quiet=True, resnet_pretrained="none")
        with patched(constants):
            runs = [run_pipeline(run_args, "faceweb", splits[s], s, croppers) for s in seeds]
        shown = " ".join(f"{key}={mean(r[key] for r in runs):.4f}" for key in FIELDS)
        print(f"config={name} {shown}", flush=True)


@contextmanager
def patched(constants):
    """Set "module.NAME=value" constants of training.ml for the block, then restore them."""
    saved = []
    for item in constants:
        path, _, text = item.partition("=")
        module_name, _, attribute = path.rpartition(".")
        module = importlib.import_module(f"training.ml.{module_name}")
        old = getattr(module, attribute)
        saved.append((module, attribute, old))
        setattr(module, attribute, type(old)(text))
    try:
        yield
    finally:
        for module, attribute, old in reversed(saved):
            setattr(module, attribute, old)


if __name__ == "__main__":
    main()
