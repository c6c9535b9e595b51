import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from identities.batches import BatchRefused, photos_of_zip_file
from identities.uploads import UploadError, clean_image, read_upload
from training import services

ZIP_MAGIC = b"PK\x03\x04"


class Command(BaseCommand):
    help = (
        "Identify photos (or zips of photos) with the active model; prints one JSON object "
        "per photo per line."
    )

    def add_arguments(self, parser):
        parser.add_argument("photos", nargs="+", type=Path, help="photos, or zips of photos")
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument(
            "--strictness", choices=services.STRICTNESS_CHOICES, default="normal",
            help="how sure the model must be before it names a face",
        )  # fmt: skip

    def handle(self, photos, top_k, strictness, **options):
        failures = 0
        for name, data, reason in self.photo_bytes(photos):
            line = self.identify(name, data, reason, top_k, strictness)
            failures += "error" in line
            self.stdout.write(json.dumps(line))
        if failures:
            raise CommandError(f"{failures} photo(s) could not be identified.")

    def photo_bytes(self, paths):
        """(name, bytes or None, why not) per photo; a zip's photos one by one."""
        for path in paths:
            try:
                with path.open("rb") as handle:
                    if handle.read(4) == ZIP_MAGIC:
                        yield from photos_of_zip_file(path)
                        continue
                    handle.seek(0)
                    yield str(path), read_upload(handle), ""
            except (UploadError, BatchRefused, OSError) as exc:
                yield str(path), None, str(exc)

    def identify(self, name, data, reason, top_k, strictness):
        if reason:
            return {"photo": name, "error": reason}
        try:
            image = clean_image(data).image
            result = services.identify(image, top_k=top_k, strictness=strictness)
        except services.NoActiveModel as exc:
            raise CommandError(str(exc)) from None
        except UploadError as exc:
            return {"photo": name, "error": str(exc)}
        line = {"photo": name, "model_version": result["model_version"], "faces": result["faces"]}
        if "too_small" in result:
            line["too_small"] = result["too_small"]
        return line
