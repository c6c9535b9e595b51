"""How long identifying one photo takes, against a bare ResNet18 forward pass.

    python bench/identify_latency.py [--faces-from DIR] [--repeats 50] [--threads 1]

Measures, in one process: the bare torchvision ResNet18 forward at 224x224, batch 1; and
faceweb's whole identify path (decode and validate the upload, detect, align or crop,
classify in one batch, threshold) on 640x480 JPEGs: one face of a person the model
knows, four such faces, and one stranger's face. The default face network (5-point
landmarks, aligned chip, each face with its mirror image in one batch; in int8 where the
CPU has VNNI, printed as face_network=) is trained as a training job trains it, on the
folder's people bar 5 held back as strangers, the photos pasted in left out; the
ResNet18 pipeline (margin crop, 112 px) is untrained, which costs it the same time.
Everything is timed in turn within each repeat, so that a change of the machine's speed
during the run (this one's moves by 20%) weighs on all alike. Prints medians; the last
line is `identify_to_forward_ratio=<default, one known face / bare forward>`. Each model
is loaded once, as in a web process, with its default input size. Without the folder,
cartoon faces and an untrained face model are used.
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
DEFAULT = "dlib-face-resnet"
PIPELINES = ("resnet18", DEFAULT)


def main():
    args = parse_args()
    import django
    import torch

    django.setup()
    torch.set_num_threads(args.threads)
    split = people_split(args.faces_from)
    photos = test_photos(args.faces_from, split)
    timed = {"forward": bare_forward()}
    for architecture in PIPELINES:
        predictor = make_predictor(architecture, split)
        if architecture == DEFAULT:
            print(f"face_network={precision(predictor)}")
        for kind, (photo, expect) in photos.items():
            if kind != "stranger" or architecture == DEFAULT:
                timed[architecture, kind], named = identify(predictor, photo, expect)
                if architecture == DEFAULT:
                    print(f"photo={kind} faces={expect} named={named}")
    ms = medians_ms(timed, args.repeats)
    forward = ms["forward"]
    print(f"threads={args.threads} repeats={args.repeats} trained={split is not None}")
    print(f"bare_resnet18_forward_224_ms={forward:.1f}")
    for architecture in PIPELINES:
        one_ms, four_ms = ms[architecture, "one"], ms[architecture, "four"]
        stranger = ms.get((architecture, "stranger"))
        extra = (
            ""
            if stranger is None
            else (
                f" identify_one_stranger_640x480_ms={stranger:.1f} "
                f"stranger_ratio={stranger / forward:.2f}"
            )
        )
        print(
            f"pipeline={architecture} identify_one_face_640x480_ms={one_ms:.1f} "
            f"identify_four_faces_640x480_ms={four_ms:.1f} ratio={one_ms / forward:.2f}{extra}"
        )
    print(f"identify_to_forward_ratio={ms[DEFAULT, 'one'] / forward:.2f}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-from", type=Path, default=DEFAULT_FACES,
                        help="a folder-per-person dataset to take faces from "
                        "(generated cartoon faces when it does not exist)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return parser.parse_args()


def people_split(folder):
    """bench.baseline's enrolment split of the folder (5 people held back), or None."""
    if not (folder.is_dir() and len([p for p in folder.iterdir() if p.is_dir()]) >= 9):
        return None
    from bench.baseline import enrolment_split

    return enrolment_split(folder, seed=0, unknown_people=5)


def test_photos(folder, split) -> dict:
    """{kind: (640x480 JPEG bytes, faces in it)}: "one" known face, "four" known faces and,
    with a split, "stranger" (one held-back person's face)."""
    from PIL import Image

    if split is None:
        from tests.images import person_image

        known = [person_image(person, 0, size=200) for person in range(4)]
        strangers = []
    else:
        known = [Image.open(photos[0]).convert("RGB") for photos in split.test.values()][:4]
        strangers = [Image.open(photos[0]).convert("RGB") for photos in split.unknown.values()]
    photos = {"one": (one_face(known[0]), 1), "four": (four_faces(known), 4)}
    if strangers:
        photos["stranger"] = (one_face(strangers[0]), 1)
    return photos


def one_face(face):
    from PIL import Image

    photo = Image.new("RGB", (640, 480), (90, 110, 130))
    photo.paste(face.resize((220, 220)), (210, 130))
    return jpeg(photo)


def four_faces(faces):
    from PIL import Image

    photo = Image.new("RGB", (640, 480), (90, 110, 130))
    for slot, face in enumerate(faces):
        photo.paste(face.resize((200, 200)), (40 + (slot % 2) * 360, 20 + (slot // 2) * 240))
    return jpeg(photo)


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


def make_predictor(architecture, split):
    """The default face model trained on the split's enrolled photos as a training job
    trains it (bench/accuracy.py's pipeline); an untrained model for ResNet18 (its time
    does not depend on its weights) or without a split."""
    from training.ml.backbones import get_backbone
    from training.ml.config import TrainConfig
    from training.ml.model import build_model
    from training.ml.predictor import Predictor

    config = TrainConfig(architecture=architecture).resolved()
    if architecture == DEFAULT and split is not None:
        return trained(config, split)
    backbone = get_backbone(architecture)
    model = build_model(architecture, 15, "none", "all", config.head)
    names = [{"id": i, "name": f"person {i}"} for i in range(15)]
    return Predictor(model, names, config.image_size, backbone.mean, backbone.std)


def trained(config, split):
    from bench.accuracy import make_croppers, make_predictor, usable_enrolment
    from bench.baseline import write_crops
    from training.ml.train import fit

    cropper = make_croppers(("chip",))["chip", "picked"]
    train, val, _ = usable_enrolment(split, cropper)
    with tempfile.TemporaryDirectory(prefix="faceweb-bench-") as folder:
        write_crops(train, cropper, Path(folder) / "train")
        write_crops(val, cropper, Path(folder) / "val")
        return make_predictor(config, fit(Path(folder), config))


def precision(predictor):
    """How the predictor runs the face network: int8 (a trained model, a CPU with VNNI),
    bf16 (a CPU with AVX512-BF16 or AMX) or fp32."""
    if predictor.int8 is not None:
        return "int8"
    return "bf16" if predictor.dtype is not None else "fp32"


def identify(predictor, photo, expect):
    """(the whole identify path on photo (JPEG bytes) as a function to time, how many of
    its faces it names)."""
    from identities.uploads import clean_image
    from training.ml.identify import identify_faces

    found = identify_faces(predictor, clean_image(photo).image).faces
    if len(found) != expect:
        raise SystemExit(f"expected {expect} face(s) in the test photo, found {len(found)}")
    named = sum(result["accepted"] for _, result in found)
    return lambda: identify_faces(predictor, clean_image(photo).image), named


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
