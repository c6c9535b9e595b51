import time

from django.core.management.base import BaseCommand, CommandError

from identities.recompute import photos_to_recompute, recompute_photos
from training import services


class Command(BaseCommand):
    help = (
        "Compute the 5 landmarks, the aligned face chip and the base face network's embedding "
        "of every usable photo that lacks them or was embedded by another network (--all: of "
        "every usable photo). Each photo is committed on its own: a killed run goes on where it "
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
        if not ids:
            self.stdout.write(
                f"Nothing to do: every usable photo has its chip and {model} embedding."
            )
            return
        self.stdout.write(f"{len(ids)} photo(s) to do with {model}.")
        done, skipped, started = 0, 0, time.monotonic()
        for start in range(0, len(ids), batch_size):
            try:
                outcome = recompute_photos(ids[start : start + batch_size])
            except services.FaceModelMissing as exc:
                raise CommandError(str(exc)) from exc
            for photo, reason in outcome.skipped:
                self.stdout.write(f"skipped photo {photo.pk} of {photo.identity}: {reason}")
            done, skipped = done + outcome.done, skipped + len(outcome.skipped)
            elapsed = time.monotonic() - started
            finished = min(start + batch_size, len(ids))
            self.stdout.write(f"{finished}/{len(ids)} ({finished / elapsed:.1f} photos/s)")
        self.stdout.write(
            f"recomputed={done} skipped={skipped} changed_meanwhile={len(ids) - done - skipped} "
            f"seconds={time.monotonic() - started:.1f}"
        )
