"""How long identifying one photo takes, against a bare ResNet18 forward pass.

    python bench/identify_latency.py [--faces-from DIR] [--repeats 50] [--threads 1]

Measures, in one process: the bare torchvision ResNet18 forward at 224x224, batch 1; and
faceweb's whole identify path (decode and validate the upload, detect, align or crop,
classify in one batch, threshold) on a 640x480 JPEG with one face and on one with four
faces, for the default face network (5-point landmarks, aligned chip, the face and its
mirror image in one batch) and for the ResNet18 pipeline (margin crop, 112 px). The five
are timed in turn within each repeat, so that a change of the machine's speed during the
run (this one's moves by 20%) weighs on them alike. Prints medians; the last line is
`identify_to_forward_ratio=<default one-face path / bare forward>`. Each model is loaded
once, as in a web process, with its default input size.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceweb.settings")
os.environ.setdefault("FACEWEB_DATA_DIR", tempfile.mkdtemp(prefix="faceweb-bench-"))

DEFAULT_FACES = ROOT.parent / "shared" / "datasets" / "lfw_dev"


def main():
    args = parse_args()
    import django
    import torch

    django.setup()
    torch.set_num_threads(args.threads)
    one, four = test_photos(args.faces_from)
    pipelines = ("resnet18", "dlib-face-resnet")
    timed = {"forward": bare_forward()}
    for architecture in pipelines:
        predictor = make_predictor(architecture, classes=15)
        timed[architecture, 1] = identify(predictor, one, expect=1)
        timed[architecture, 4] = identify(predictor, four, expect=4)
    ms = medians_ms(timed, args.repeats)
    forward = ms["forward"]
    print(f"threads={args.threads} repeats={args.repeats}")
    print(f"bare_resnet18_forward_224_ms={forward:.1f}")
    for architecture in pipelines:
        one_ms, four_ms = ms[architecture, 1], ms[architecture, 4]
        print(
            f"pipeline={architecture} identify_one_face_640x480_ms={one_ms:.1f} "
            f"identify_four_faces_640x480_ms={four_ms:.1f} ratio={one_ms / forward:.2f}"
        )
    print(f"identify_to_forward_ratio={one_ms / forward:.2f}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-from", type=Path, default=DEFAULT_FACES,
                        help="a folder-per-person dataset to take faces from "
                        "(generated cartoon faces when it does not exist)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return parser.parse_args()


def test_photos(folder):
    """Two 640x480 JPEGs (bytes): one face, and four faces."""
    from PIL import Image

    faces = face_pictures(folder, 4)
    one = Image.new("RGB", (640, 480), (90, 110, 130))
    one.paste(faces[0].resize((220, 220)), (210, 130))
    four = Image.new("RGB", (640, 480), (90, 110, 130))
    for slot, face in enumerate(faces):
        four.paste(face.resize((200, 200)), (40 + (slot % 2) * 360, 20 + (slot // 2) * 240))
    return jpeg(one), jpeg(four)


def face_pictures(folder, count):
    from PIL import Image

    people = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if len(people) >= count:
        return [Image.open(sorted(p.iterdir())[0]).convert("RGB") for p in people[:count]]
    from tests.images import person_image

    return [person_image(person, 0, size=200) for person in range(count)]


def jpeg(image):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def bare_forward():
    import torch
    from torchvision.models import resnet18

    model = resnet18(weights=None).eval()
    batch = torch.randn(1, 3, 224, 224)

    def forward():
        with torch.inference_mode():
            model(batch)

    return forward


def make_predictor(architecture, classes):
    from training.ml.backbones import get_backbone
    from training.ml.config import TrainConfig
    from training.ml.model import build_model
    from training.ml.predictor import Predictor

    backbone = get_backbone(architecture)
    config = TrainConfig(architecture=architecture).resolved()
    model = build_model(architecture, classes, "none", "all", config.head)
    names = [{"id": i, "name": f"person {i}"} for i in range(classes)]
    return Predictor(model, names, config.image_size, backbone.mean, backbone.std)


def identify(predictor, photo, expect):
    """The whole identify path on photo (JPEG bytes), as a function to time."""
    from identities.uploads import clean_image
    from training.ml.identify import identify_faces

    found = identify_faces(predictor, clean_image(photo).image).faces
    if len(found) != expect:
        raise SystemExit(f"expected {expect} face(s) in the test photo, found {len(found)}")
    return lambda: identify_faces(predictor, clean_image(photo).image)


def medians_ms(functions: dict, repeats) -> dict:
    """{key: median milliseconds}; each repeat times every function once, in turn."""
    for function in functions.values():
        for _ in range(3):
            function()  # warm-up: lazy initialisation, allocator
    times = {key: [] for key in functions}
    for _ in range(repeats):
        for key, function in functions.items():
            started = time.perf_counter()
            function()
            times[key].append((time.perf_counter() - started) * 1000)
    return {key: statistics.median(values) for key, values in times.items()}


if __name__ == "__main__":
    main()
