import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from identities.uploads import UploadError, clean_image, read_upload
from training import services


class Command(BaseCommand):
    help = "Identify photos with the active model; prints one JSON object per photo per line."

    def add_arguments(self, parser):
        parser.add_argument("photos", nargs="+", type=Path)
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument(
            "--strictness", choices=services.STRICTNESS_CHOICES, default="normal",
            help="how sure the model must be before it names a face",
        )  # fmt: skip

    def handle(self, photos, top_k, strictness, **options):
        failures = 0
        for photo in photos:
            try:
                with photo.open("rb") as handle:
                    image = clean_image(read_upload(handle)).image
                result = services.identify(image, top_k=top_k, strictness=strictness)
                line = {
                    "photo": str(photo),
                    "model_version": result["model_version"],
                    "faces": result["faces"],
                }
            except services.NoActiveModel as exc:
                raise CommandError(str(exc)) from None
            except (UploadError, OSError) as exc:
                failures += 1
                line = {"photo": str(photo), "error": str(exc)}
            self.stdout.write(json.dumps(line))
        if failures:
            raise CommandError(f"{failures} photo(s) could not be identified.")
