import time

from django.core.management.base import BaseCommand, CommandError

from identities.recompute import (
    embed_strangers,
    photos_to_recompute,
    recompute_photos,
    strangers_to_embed,
)
from training import services


class Command(BaseCommand):
    help = (
        "Compute the 5 landmarks, the aligned face chip and the base face network's embedding "
        "of every usable photo that lacks them or was embedded by another network (--all: of "
        'every usable photo), and the base embedding of faces marked "not anyone we know" '
        "that lack it. Each photo is committed on its own: a killed run goes on where it "
        "stopped, and a second run does nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all", dest="everything", action="store_true", help="redo every usable photo"
        )
        parser.add_argument(
            "--batch-size", type=int, default=32, help="photos embedded in one forward pass"
        )

    def handle(self, everything, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            model = services.base_embedding_model()
        except services.FaceModelMissing as exc:
            raise CommandError(str(exc)) from exc
        ids = photos_to_recompute(model, everything=everything)
        strangers = strangers_to_embed(model)
        if not ids and not strangers:
            self.stdout.write(
                f"Nothing to do: every usable photo has its chip and {model} embedding, and "
                'every face marked "not anyone we know" its embedding.'
            )
            return
        try:
            if ids:
                self.photos(ids, batch_size, model)
            if strangers:
                self.strangers(strangers, batch_size, model)
        except services.FaceModelMissing as exc:
            raise CommandError(str(exc)) from exc

    def photos(self, ids, batch_size, model):
        self.stdout.write(f"{len(ids)} photo(s) to do with {model}.")
        done, skipped, started = 0, 0, time.monotonic()
        for start in range(0, len(ids), batch_size):
            outcome = recompute_photos(ids[start : start + batch_size])
            for photo, reason in outcome.skipped:
                self.stdout.write(f"skipped photo {photo.pk} of {photo.identity}: {reason}")
            done, skipped = done + outcome.done, skipped + len(outcome.skipped)
            self.progress(start + batch_size, len(ids), started, "photos")
        self.stdout.write(
            f"recomputed={done} skipped={skipped} changed_meanwhile={len(ids) - done - skipped} "
            f"seconds={time.monotonic() - started:.1f}"
        )

    def strangers(self, ids, batch_size, model):
        self.stdout.write(f'{len(ids)} face(s) marked "not anyone we know" to embed with {model}.')
        lost, started = 0, time.monotonic()
        for start in range(0, len(ids), batch_size):
            lost += embed_strangers(ids[start : start + batch_size])
            self.progress(start + batch_size, len(ids), started, "faces")
        if lost:
            self.stdout.write(
                f"{lost} of them could not be embedded: their photo is no longer stored. "
                "They stay marked, and are never offered again."
            )
        self.stdout.write(
            f"strangers_embedded={len(ids) - lost} strangers_lost={lost} "
            f"seconds={time.monotonic() - started:.1f}"
        )

    def progress(self, finished, total, started, what):
        finished = min(finished, total)
        rate = finished / max(time.monotonic() - started, 1e-9)
        self.stdout.write(f"{finished}/{total} ({rate:.1f} {what}/s)")
