"""Data quality at a glance: photos per person, photos training cannot use, near-duplicate
photos and the balance between people. Reads only.

Near-duplicates are found with a difference hash (dHash): the photo shrunk to 17x16 grey
pixels, one bit per pair of neighbours saying which is brighter. (The classic 9x8 hash is
too coarse for faces, which all share one layout: two people often differ in 3 of its 64
bits.) Two photos whose 256 bits differ in at most NEAR_DUPLICATE_BITS places look the same
to a person (a re-saved,
resized or slightly recoloured copy); such a pair teaches the model nothing twice and, when
it sits in both the training and the validation split, flatters the accuracy.
"""

from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Q
from PIL import Image

from .models import FaceImage, Identity

NEAR_DUPLICATE_BITS = 10
HASH_SIZE = 16
# Past this many photos the pairwise comparison (n² / 2 pairs) is done per person only.
COMPARE_ACROSS_PEOPLE_UP_TO = 4000
HASH_CACHE_SECONDS = 30 * 24 * 3600
Status = FaceImage.Status


@dataclass
class PersonRow:
    identity: Identity
    photos: int
    usable: int
    no_face: int
    several_faces: int
    too_small: int
    below_minimum: bool
    missing: int  # usable photos short of the minimum
    bar_percent: float  # usable photos as a share of the best-provided person's


@dataclass
class QualityReport:
    minimum: int
    rows: list = field(default_factory=list)
    near_duplicates: list = field(default_factory=list)  # [(FaceImage, FaceImage, bits)]
    totals: dict = field(default_factory=dict)

    @property
    def below_minimum(self):
        return [row for row in self.rows if row.below_minimum]

    @property
    def imbalance(self):
        """Most usable photos over fewest, among people with any; None with fewer than two."""
        counts = [row.usable for row in self.rows if row.usable]
        return round(max(counts) / min(counts), 1) if len(counts) > 1 else None


def build_report(minimum):
    """A QualityReport of every person; minimum is the usable photo count to warn under."""
    rows = person_rows(minimum)
    totals = {
        key: sum(getattr(row, key) for row in rows)
        for key in ("photos", "usable", "no_face", "several_faces", "too_small")
    }
    return QualityReport(
        minimum=minimum, rows=rows, near_duplicates=near_duplicates(), totals=totals
    )


def person_rows(minimum):
    def count(status):
        return Count("images", filter=Q(images__status=status), distinct=True)

    people = (
        Identity.objects.with_photo_counts()
        .annotate(
            no_face=count(Status.NO_FACE),
            several_faces=count(Status.SEVERAL_FACES),
            too_small=count(Status.TOO_SMALL),
        )
        .order_by("name")
    )
    most = max((p.usable_count for p in people), default=0) or 1
    return [
        PersonRow(
            identity=person,
            photos=person.photo_count,
            usable=person.usable_count,
            no_face=person.no_face,
            several_faces=person.several_faces,
            too_small=person.too_small,
            below_minimum=person.usable_count < minimum,
            missing=max(0, minimum - person.usable_count),
            bar_percent=round(100 * person.usable_count / most, 1),
        )
        for person in people
    ]


def dhash(image, size=HASH_SIZE):
    """The difference hash of a PIL image: size*size bits packed in bytes."""
    grey = np.asarray(image.convert("L").resize((size + 1, size), Image.BILINEAR), dtype=np.int16)
    return np.packbits(grey[:, 1:] > grey[:, :-1]).tobytes()


def differing_bits(one, other):
    return int(
        np.unpackbits(
            np.bitwise_xor(np.frombuffer(one, np.uint8), np.frombuffer(other, np.uint8))
        ).sum()
    )


def photo_hashes(images):
    """{image id: dHash} from the thumbnails, cached by content (sha256) across page views."""
    keys = {
        image.pk: f"faceweb:dhash{HASH_SIZE}:{image.sha256}:{image.thumbnail.name}"
        for image in images
    }
    cached = cache.get_many(list(keys.values()))
    hashes, fresh = {}, {}
    for image in images:
        key = keys[image.pk]
        if key not in cached:
            try:
                with image.thumbnail.open("rb") as handle, Image.open(handle) as opened:
                    cached[key] = fresh[key] = dhash(opened)
            except (OSError, ValueError):
                continue  # a missing thumbnail is not this page's problem
        hashes[image.pk] = cached[key]
    cache.set_many(fresh, HASH_CACHE_SECONDS)
    return hashes


def near_duplicates(max_bits=NEAR_DUPLICATE_BITS):
    """[(FaceImage, FaceImage, differing bits)] of look-alike photos, closest first."""
    images = list(FaceImage.objects.exclude(thumbnail="").select_related("identity").order_by("pk"))
    hashes = photo_hashes(images)
    images = [image for image in images if image.pk in hashes]
    if len(images) > COMPARE_ACROSS_PEOPLE_UP_TO:
        groups = {}
        for image in images:
            groups.setdefault(image.identity_id, []).append(image)
        found = [pair for group in groups.values() for pair in close_pairs(group, hashes, max_bits)]
    else:
        found = close_pairs(images, hashes, max_bits)
    return sorted(found, key=lambda pair: pair[2])


def close_pairs(images, hashes, max_bits):
    if len(images) < 2:
        return []
    values = np.stack([np.frombuffer(hashes[i.pk], np.uint8) for i in images])
    pairs = []
    for row, value in enumerate(values[:-1]):
        differing = np.bitwise_xor(values[row + 1 :], value)
        bits = np.unpackbits(differing, axis=1).sum(axis=1)
        for offset in np.flatnonzero(bits <= max_bits):
            pairs.append((images[row], images[row + 1 + offset], int(bits[offset])))
    return pairs
