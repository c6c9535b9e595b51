"""Files left behind by a process that died between storing a photo and recording it.

An upload writes its JPEGs first and creates the row after (identities.uploads); a web or
worker process killed in between (kill -9, out of memory) leaves files no row points to.
They are personal data nobody can see or delete from the app, so they are removed here.
"""

from datetime import timedelta

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

# The folders uploads and identifications write to; anything else is left alone.
PHOTO_FOLDERS = (
    "faces",
    "thumbs",
    "crops",
    "chips",
    "predictions",
    "prediction-faces",
    "identify-batches",
)
# A file younger than this may belong to an upload still in progress.
DEFAULT_GRACE = timedelta(hours=1)


def referenced_names():
    """Every stored file name any row of any model points to."""
    names = set()
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        for field in fields:
            # The base manager sees every row, whatever a custom default manager hides.
            rows = model._base_manager.exclude(**{field: ""})
            names.update(rows.values_list(field, flat=True))
    return names


def orphan_files(grace=DEFAULT_GRACE):
    """Names of stored photos older than grace that no row points to. Read-only."""
    cutoff = timezone.now() - grace
    known = referenced_names()
    orphans = []
    for folder in PHOTO_FOLDERS:
        if not default_storage.exists(folder):
            continue
        for name in default_storage.listdir(folder)[1]:
            path = f"{folder}/{name}"
            if path not in known and default_storage.get_modified_time(path) <= cutoff:
                orphans.append(path)
    return sorted(orphans)


def remove_orphan_files(grace=DEFAULT_GRACE):
    """Delete the orphan photos; returns their names. Safe to run any time, and twice."""
    removed = orphan_files(grace)
    for name in removed:
        default_storage.delete(name)
    return removed
