from datetime import timedelta

from django.core.management.base import BaseCommand

from identities.housekeeping import remove_orphan_files


class Command(BaseCommand):
    help = "Delete stored photos no row points to (left by a process killed mid-upload)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=60,
            help="only files at least this old, so uploads in progress are left alone",
        )

    def handle(self, older_than_minutes, **options):
        removed = remove_orphan_files(timedelta(minutes=older_than_minutes))
        for name in removed:
            self.stdout.write(f"removed {name}")
        self.stdout.write(f"removed={len(removed)}")
