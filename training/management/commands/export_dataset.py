from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training.dataset import NotEnoughData, export_dataset


class Command(BaseCommand):
    help = "Write OUT/train/<identity>/, OUT/val/<identity>/ and OUT/manifest.json."

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--val-fraction", type=float, default=settings.FACEWEB_VAL_FRACTION)
        parser.add_argument("--seed", type=int, default=settings.FACEWEB_SPLIT_SEED)

    def handle(self, out, val_fraction, seed, **options):
        try:
            manifest = export_dataset(out, val_fraction=val_fraction, seed=seed)
        except (NotEnoughData, ValueError) as exc:
            raise CommandError(str(exc)) from None
        for entry in manifest.skipped:
            self.stdout.write(f"left out {entry['name']}: {entry['reason']}")
        self.stdout.write(
            f"people={len(manifest.classes)} train={manifest.count('train')} "
            f"val={manifest.count('val')} dataset_hash={manifest.dataset_hash} out={out}"
        )
