"""How many faces of a group photo each face detector finds, and how fast.

    python bench/detection.py --dataset DIR [--photos 8] [--seed 0] [--threads 2]
                              [--detectors today,hog,cnn,default] [--min-faces 64]

Builds group photos from the photos in DIR (one folder per person), with a fixed seed:
sizes from 1600x1000 to 4000x3000, 10 to 40 faces each, faces from 60 to 300 px (the
size of the face's box as dlib's CNN detector draws it on the source photo), a third of
them turned in-plane by 5-20 degrees, some against the photo's edge, on a plain or a
cluttered background (other photos' corners). A source photo is used once, unless the
dataset has fewer than 45 per group photo.

A face is found when a box's centre lies in its tile and the box is at least a third of
the face's size; a false box is one whose centre lies in no tile. Time per 12 MP photo is
given as a ratio to a bare torchvision ResNet18 224x224 batch-1 forward (the fastest of
10) timed right after each 12 MP photo; the median over those photos. Detectors: `today`
(faceweb before face-size detection: the photo scaled to 1,024 px, HOG), `hog` and `cnn`
(training/ml/detection.py, once per --min-faces value), `default` (the settings'
defaults). Last line, for the last detector (the default, unless --detectors says
otherwise):
`recall=<r> false_per_photo=<f> time_ratio_12mp=<t>` (recall of faces of 60 px and more).
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [(1600, 1000), (2400, 1600), (3000, 2000), (4000, 3000)]
FACE_SHARE = 0.45  # of the tile's side, about what LFW photos hold
MIN_FACE, MAX_FACE = 60, 300


@dataclass
class Tile:
    """A face pasted on the canvas: its tile's bounding box and the face's size."""

    box: tuple  # left, top, right, bottom (exclusive)
    face: float
    angle: float = 0.0


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sources = reference_faces(args.dataset, args.seed, args.photos * 45)
    photos = [build_photo(sources, i, args.seed) for i in range(args.photos)]
    print(f"photos={len(photos)} faces={sum(len(t) for _, t in photos)} threads={args.threads}")
    result = None
    for name, min_face, find in detectors(args):
        result = evaluate(find, photos)
        print(
            f"detector={name} min_face={min_face} "
            + " ".join(f"{k}={v}" for k, v in result.items())
        )
    print(
        f"recall={result['recall_60_plus']} false_per_photo={result['false_per_photo']} "
        f"time_ratio_12mp={result['time_ratio_12mp']}"
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--detectors", default="today,hog,cnn,default")
    parser.add_argument("--min-faces", default="64", help="comma-separated, for hog and cnn")
    return parser.parse_args()


# --- the group photos ----------------------------------------------------------------------


def reference_faces(dataset: Path, seed: int, wanted: int) -> list:
    """[(path, box)] of source photos with the face box the CNN finds nearest their
    centre, shuffled with the seed."""
    from training.ml.detection import DetectOptions, search

    paths = sorted(p for p in dataset.glob("*/*") if p.suffix.lower() in (".jpg", ".png"))
    random.Random(seed).shuffle(paths)
    sources = []
    options = DetectOptions(detector="cnn", min_face=64)
    for path in paths[:wanted]:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        faces = search(rgb, options).faces
        if faces:
            sources.append((path, min((box for box, _ in faces), key=off_centre(rgb.size))))
    return sources


def off_centre(size):
    """How far a box's centre is from the photo's."""
    return lambda b: abs(b[0] + b[2] / 2 - size[0] / 2) + abs(b[1] + b[3] / 2 - size[1] / 2)


def build_photo(sources, index, seed):
    """(PIL canvas, [Tile]) for photo number index."""
    rng = random.Random(seed * 1000 + index)
    width, height = SIZES[index % len(SIZES)]
    count = rng.randint(10, 40)
    cols = max(1, round(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width / cols, height / rows
    largest = min(MAX_FACE, FACE_SHARE * min(cell_w, cell_h) / 1.3)
    cluttered = index % 2 == 1
    canvas = background(width, height, sources, rng, cluttered)
    tiles = []
    for n in range(count):
        path, box = sources[(index * 40 + n) % len(sources)]
        face = rng.uniform(MIN_FACE, max(MIN_FACE, largest))
        tile = paste_face(canvas, path, box, face, (n % cols, n // cols), (cell_w, cell_h), rng)
        tiles.append(tile)
    return canvas, tiles


def background(width, height, sources, rng, cluttered):
    colour = tuple(rng.randint(60, 200) for _ in range(3))
    canvas = Image.new("RGB", (width, height), colour)
    if not cluttered:
        return canvas
    # Other photos' corners: texture and edges, rarely a face.
    for _ in range(width * height // 40000):
        path, _ = sources[rng.randrange(len(sources))]
        with Image.open(path) as image:
            corner = image.convert("RGB").crop((0, 0, 50, 50))
        side = rng.randint(80, 240)
        canvas.paste(corner.resize((side, side)), (rng.randrange(width), rng.randrange(height)))
    return canvas


def paste_face(canvas, path, box, face, cell, cell_size, rng) -> Tile:
    scale = face / box[2]
    with Image.open(path) as image:
        tile = image.convert("RGB")
    tile = tile.resize((max(1, round(tile.width * scale)), max(1, round(tile.height * scale))))
    mask = Image.new("L", tile.size, 255)
    angle = 0.0
    if rng.random() < 1 / 3:
        angle = rng.choice((-1, 1)) * rng.uniform(5, 20)
        tile = tile.rotate(angle, Image.BILINEAR, expand=True)
        mask = mask.rotate(angle, Image.BILINEAR, expand=True)
    left = cell[0] * cell_size[0] + rng.uniform(0, max(0, cell_size[0] - tile.width))
    top = cell[1] * cell_size[1] + rng.uniform(0, max(0, cell_size[1] - tile.height))
    # Some faces against the photo's edge.
    if cell[0] == 0 and rng.random() < 0.5:
        left = 0
    if cell[1] == 0 and rng.random() < 0.5:
        top = 0
    left, top = round(left), round(top)
    canvas.paste(tile, (left, top), mask)
    return Tile((left, top, left + tile.width, top + tile.height), face, angle)


# --- the detectors and the measures ----------------------------------------------------------


def detectors(args):
    """(name, min_face, function PIL image -> [(x, y, w, h)]) for each detector asked for."""
    from training.ml.detection import DetectOptions

    for name in args.detectors.split(","):
        if name == "today":
            yield name, "-", detect_as_before
        elif name == "default":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceweb.settings")
            import django

            django.setup()
            from training.services import detect_options

            options = detect_options()
            yield f"default({options.detector})", options.min_face, searcher(options)
        else:
            for min_face in (int(v) for v in args.min_faces.split(",")):
                options = DetectOptions(detector=name, min_face=min_face, threads=args.threads)
                yield name, min_face, searcher(options)


def searcher(options):
    from training.ml.detection import search

    return lambda image: [box for box, _ in search(image, options).faces]


def detect_as_before(image):
    """faceweb's detection before face-size scaling: the photo at 1,024 px, HOG."""
    import dlib

    scale = min(1.0, 1024 / max(image.size))
    small = image.resize((round(image.width * scale), round(image.height * scale)))
    rects = dlib.get_frontal_face_detector()(np.asarray(small), 0)
    return [
        (r.left() / scale, r.top() / scale, r.width() / scale, r.height() / scale) for r in rects
    ]


def evaluate(find, photos):
    found = {"60_80": [0, 0], "80_plus": [0, 0]}
    turned = [0, 0]
    false_boxes, times_12mp, ratios = 0, [], []
    for canvas, tiles in photos:
        started = time.perf_counter()
        boxes = find(canvas)
        elapsed = time.perf_counter() - started
        if canvas.size == (4000, 3000):
            # The forward pass timed right after, so that both meet the same load.
            times_12mp.append(elapsed)
            ratios.append(elapsed / bare_forward_seconds(repeats=10))
        for tile in tiles:
            bucket = found["80_plus" if tile.face >= 80 else "60_80"]
            hit = any(inside(b, tile.box) and min(b[2], b[3]) >= tile.face / 3 for b in boxes)
            bucket[0] += hit
            bucket[1] += 1
            if tile.angle:
                turned[0] += hit
                turned[1] += 1
        false_boxes += sum(not any(inside(b, t.box) for t in tiles) for b in boxes)
    total = [sum(v[0] for v in found.values()), sum(v[1] for v in found.values())]
    mean_12mp = statistics.mean(times_12mp) if times_12mp else float("nan")
    ratio_12mp = statistics.median(ratios) if ratios else float("nan")
    return {
        "recall_80_plus": ratio(found["80_plus"]),
        "recall_60_80": ratio(found["60_80"]),
        "recall_60_plus": ratio(total),
        "recall_turned": ratio(turned),
        "false_per_photo": f"{false_boxes / len(photos):.2f}",
        "seconds_12mp": f"{mean_12mp:.2f}",
        "time_ratio_12mp": f"{ratio_12mp:.1f}",
    }


def inside(box, tile_box):
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return tile_box[0] <= cx < tile_box[2] and tile_box[1] <= cy < tile_box[3]


def ratio(pair):
    return f"{pair[0] / pair[1]:.3f}" if pair[1] else "nan"


def bare_forward_seconds(repeats=20):
    """The fastest of repeats ResNet18 forwards: the least disturbed by other work."""
    import torch
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    main()
