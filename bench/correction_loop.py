"""Does faceweb learn from its users' corrections? A simulated review loop on a dataset.

    python bench/correction_loop.py --dataset ../shared/datasets/lfw_dev --unknown-people 5 \\
        [--unknown DIR] [--rounds 3] [--seed 0 | --seeds 0,1,2] [--initial-per-person 3]
        [--epochs N]

Runs the app itself on a temporary SQLite database and media folder (nothing of a real
installation is touched), with training from random weights. The dataset is split as
bench/accuracy.py splits it (bench.baseline.split_dataset): 20% of each known person's
photos, at least one, are the test photos, never used; --unknown-people persons (or the
persons of --unknown) are strangers, half of whose photos are tested and half streamed.

  round 0: --initial-per-person photos of each known person are uploaded and a model is
           trained on them (training.jobs.run_job, which calls training.ml.train.fit).
  round n: a batch of new photos (the known people's remaining photos, in --rounds equal
           parts, and the strangers' streamed photos) is identified through the app's
           identify path; a simulated user reviews the largest face of each through
           identities.review.review_face (the Review page's code): "correct" when the model
           named the right person, "this is <person>" when it did not, "not anyone we know"
           for a stranger. Then the scheduled retrain (services.retrain_if_data_changed)
           trains and activates a new model on the corrected data.

After each round it prints, measured on the test photos with the active model:
round=<n> accuracy=<top-1 of known people's photos> unknown_false_accept=<share of
strangers' photos named as someone> training_images=<photos training uses>.
A photo where no face is found counts as a miss (known) or as not named (stranger). The
indented line under it gives the share of known test photos named at all (known_accept),
the active model's own validation accuracy and best epoch, and how the simulated user
answered the round's photos (confirm: the model was right; name: corrected; reject: a
stranger). With 40 test photos one photo is 2.5 points: retraining from random weights on
a few photos per person moves single rounds by about that much times a few, which is
why --seeds runs the whole loop once per seed (each in a fresh process, on its own split)
and ends with the mean of each round over the seeds, in the same round=... format.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runnable as a plain script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import split_dataset  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="folder of <person>/ folders")
    unknown = parser.add_mutually_exclusive_group()
    unknown.add_argument("--unknown", type=Path, help="folder of people never enrolled")
    unknown.add_argument("--unknown-people", type=int, default=0, help="persons to hold back")
    parser.add_argument("--rounds", type=int, default=3, help="review-and-retrain rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", help="comma-separated seeds: one loop each, then the means")
    parser.add_argument("--initial-per-person", type=int, default=3)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--max-per-person", type=int, default=None)
    parser.add_argument(
        "--epochs", type=int, default=None, help="per training run (default: the app's, 40)"
    )
    parser.add_argument("--strictness", default="normal", choices=["strict", "normal", "lenient"])
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.initial_per_person < 2:
        parser.error("--rounds must be at least 1 and --initial-per-person at least 2")
    return args


def setup_django(data_dir: Path, args) -> None:
    """The app on a throw-away database and media folder; Celery tasks run in-process."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="faceweb.settings",
        FACEWEB_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{data_dir / 'bench.sqlite3'}",
        FACEWEB_PRETRAINED="none",
        FACEWEB_EPOCHS=str(args.epochs or ""),
        FACEWEB_SPLIT_SEED=str(args.seed),
        FACEWEB_TORCH_THREADS="0",
        FACEWEB_AUTO_ACTIVATE="true",
        FACEWEB_KEEP_PREDICTION_PHOTOS="true",
    )
    for name in ("FACEWEB_UNKNOWN_THRESHOLD", "CACHE_URL", "FACEWEB_MEDIA_ROOT"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    from faceweb.celery import app

    app.conf.task_always_eager = True
    call_command("migrate", verbosity=0)


class Photos:
    """The photos of one run: who is in each, and in which part of the loop it is used."""

    def __init__(self, args):
        split = split_dataset(
            args.dataset,
            args.test_fraction,
            args.seed,
            args.max_per_person,
            args.unknown_people,
            args.unknown,
        )
        self.initial = {p: photos[: args.initial_per_person] for p, photos in split.train.items()}
        self.test_known = split.val
        self.test_unknown = {p: photos[: len(photos) // 2] for p, photos in split.unknown.items()}
        batches = [[] for _ in range(args.rounds)]
        for person, photos in split.train.items():
            for i, photo in enumerate(photos[args.initial_per_person :]):
                batches[i * args.rounds // max(1, len(photos) - args.initial_per_person)].append(
                    (person, photo)
                )
        for photos in split.unknown.values():
            streamed = photos[len(photos) // 2 :]
            for i, photo in enumerate(streamed):
                batches[i * args.rounds // max(1, len(streamed))].append((None, photo))
        self.batches = batches


def enrol(photos_by_person, user):
    """Create the known people with their first photos; returns {person: Identity}."""
    from identities.models import Identity
    from identities.uploads import UploadError, add_face_image, clean_image

    people = {}
    for person, photos in photos_by_person.items():
        people[person] = Identity.objects.create(name=person.replace("_", " "), created_by=user)
        for photo in photos:
            try:
                add_face_image(people[person], clean_image(photo.read_bytes()), user=user)
            except UploadError as exc:
                print(f"  skipped {photo.name}: {exc}", file=sys.stderr)
    return people


def train_initial_model(user):
    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    job = services.start_training(user=user, trigger=TrainingJob.Trigger.COMMAND)
    status = TrainingJob.objects.values_list("status", flat=True).get(pk=job.pk)
    if status == TrainingJob.Status.QUEUED:  # not run in-process by the eager Celery app
        run_job(job.pk)
    check_trained(job)


def check_trained(job):
    from training.models import TrainingJob

    job.refresh_from_db()
    if job.status != TrainingJob.Status.SUCCEEDED:
        sys.exit(f"training job {job.pk} ended {job.status}: {job.error}")


def review_batch(batch, people, user, strictness):
    """Identify each photo through the app and review its largest face as a user would;
    returns {decision: count}."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from identities.review import CONFIRM, NAME, REJECT, review_face
    from identities.views import identify_upload

    counts = {CONFIRM: 0, NAME: 0, REJECT: 0, "no_face": 0}
    for person, photo in batch:
        upload = SimpleUploadedFile(photo.name, photo.read_bytes(), content_type="image/jpeg")
        prediction = identify_upload(upload, user, strictness)
        face = prediction.face_rows.order_by("index").first()
        if face is None:
            counts["no_face"] += 1
            continue
        truth = people.get(person)
        if truth is None:
            decision = REJECT
        elif face.identity_id == truth.pk:
            decision = CONFIRM
        else:
            decision = NAME
        review_face(face, decision, user, identity=truth if decision == NAME else None)
        counts[decision] += 1
    return counts


def retrain():
    from training import services

    job = services.retrain_if_data_changed()
    if job is None:
        print("  nothing changed: no retraining", flush=True)
        return
    check_trained(job)


def measure(photos, people, strictness):
    """accuracy, unknown_false_accept and known_accept on the test photos (nothing stored)."""
    from PIL import Image, ImageOps

    from training import services

    def largest_face(path):
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        faces = services.identify(image, strictness=strictness)["faces"]
        return faces[0] if faces else None

    right = accepted = total = 0
    for person, paths in photos.test_known.items():
        for path in paths:
            total += 1
            face = largest_face(path)
            if face and face["top_k"] and face["top_k"][0]["identity_id"] == people[person].pk:
                right += 1
            accepted += bool(face and face["identity_id"])
    strangers = [p for paths in photos.test_unknown.values() for p in paths]
    named = sum(bool((face := largest_face(p)) and face["identity_id"]) for p in strangers)
    return {
        "accuracy": right / max(1, total),
        "unknown_false_accept": named / len(strangers) if strangers else math.nan,
        "known_accept": accepted / max(1, total),
    }


def training_images():
    from training.dataset import trainable_images

    return trainable_images().count()


def report(round_number, figures, started, extra=""):
    print(
        f"round={round_number} accuracy={figures['accuracy']:.4f} "
        f"unknown_false_accept={figures['unknown_false_accept']:.4f} "
        f"training_images={training_images()}",
        flush=True,
    )
    from training import services

    version = services.active_version()
    print(
        f"  known_accept={figures['known_accept']:.4f} model={version} "
        f"val_accuracy={version.val_accuracy:.4f} best_epoch={version.metrics.get('best_epoch')} "
        f"seconds={time.perf_counter() - started:.0f}{extra}",
        flush=True,
    )


ROUND_LINE = re.compile(
    r"^round=(\d+) accuracy=(\S+) unknown_false_accept=(\S+) training_images=(\d+)$"
)


def run_seeds(argv: list[str], seeds: list[int]) -> None:
    """Run the loop once per seed in a fresh process, then print each round's means."""
    argv = [a for i, a in enumerate(argv) if a != "--seeds" and argv[i - 1 : i] != ["--seeds"]]
    argv = [a for a in argv if not a.startswith("--seeds=")]
    rounds: dict[int, list[tuple[float, float, int]]] = {}
    for seed in seeds:
        print(f"seed={seed}", flush=True)
        command = [sys.executable, __file__, *argv, "--seed", str(seed)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
            for line in child.stdout:
                print(f"  {line}", end="", flush=True)
                if match := ROUND_LINE.match(line.strip()):
                    number, accuracy, false_accept, images = match.groups()
                    rounds.setdefault(int(number), []).append(
                        (float(accuracy), float(false_accept), int(images))
                    )
        if child.returncode:
            sys.exit(f"seed {seed} failed with exit status {child.returncode}")
    print(f"mean over seeds {','.join(map(str, seeds))}:")
    for number, rows in sorted(rounds.items()):
        accuracy, false_accept, images = (
            sum(column) / len(rows) for column in zip(*rows, strict=True)
        )
        print(
            f"round={number} accuracy={accuracy:.4f} unknown_false_accept={false_accept:.4f} "
            f"training_images={images:.0f}",
            flush=True,
        )


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.seeds:
        run_seeds(argv, [int(seed) for seed in args.seeds.split(",")])
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="faceweb-correction-loop-") as tmp:
        setup_django(Path(tmp), args)
        from django.contrib.auth import get_user_model

        from accounts.roles import set_role

        user = get_user_model().objects.create_user("reviewer")
        set_role(user, "editor")
        photos = Photos(args)
        people = enrol(photos.initial, user)
        train_initial_model(user)
        report(0, measure(photos, people, args.strictness), started)
        for round_number, batch in enumerate(photos.batches, start=1):
            counts = review_batch(batch, people, user, args.strictness)
            retrain()
            reviewed = " ".join(f"{k}={v}" for k, v in counts.items())
            report(round_number, measure(photos, people, args.strictness), started, f" {reviewed}")


if __name__ == "__main__":
    main()
