from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from identities.people import identity_called
from identities.uploads import UploadError, add_face_image, clean_image, read_upload
from imports.archive import person_name


class Command(BaseCommand):
    help = (
        "Import a folder laid out one sub-folder per person (the folder name is the person's "
        "name), the way a zip is imported in the browser. Photos go through the same checks as "
        "web uploads; running it twice imports nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)

    def handle(self, directory, **options):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder.")
        people = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not people:
            raise CommandError(f"{directory} has no sub-folders; expected one folder per person.")
        imported, skipped, unusable, created = 0, [], [], 0
        for folder in people:
            # The same rules as a zip's folders: spaces tidied, matched whatever the case.
            name = person_name(folder.name)
            if not name:
                self.stderr.write(f"skipped {folder.name!r}: not a name a person can have")
                continue
            identity, new = identity_called(name, None)
            created += new
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                try:
                    with path.open("rb") as handle:
                        image = add_face_image(
                            identity, clean_image(read_upload(handle)), original_name=path.name
                        )
                    imported += 1
                    if not image.is_usable:
                        unusable.append((path.relative_to(directory), image.problem))
                except UploadError as exc:
                    skipped.append((path.relative_to(directory), str(exc)))
        for path, reason in skipped:
            self.stdout.write(f"skipped {path}: {reason}")
        for path, reason in unusable:
            self.stdout.write(f"imported, not used for training {path}: {reason}")
        self.stdout.write(
            f"people={len(people)} new_people={created} imported={imported} "
            f"skipped={len(skipped)} not_usable={len(unusable)}"
        )
