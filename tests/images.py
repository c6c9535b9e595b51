"""Generated photos for tests: cartoon faces that the face detector finds, one look per
'person' (skin, hair, background), slightly moved and varied per photo."""

import functools
import io
import random
import struct
import zlib

from PIL import Image, ImageDraw, ImageFilter

BACKGROUNDS = [(70, 90, 140), (150, 150, 90), (90, 140, 100), (140, 90, 90), (120, 120, 120)]
SKINS = [(225, 185, 150), (190, 140, 100), (150, 105, 75), (235, 200, 170), (205, 160, 120)]
HAIRS = [(40, 30, 20), (120, 80, 30), (20, 20, 20), (200, 180, 120), (90, 60, 40)]


def draw_face(person, variant, size=128):
    rng = random.Random(person * 100_003 + variant)
    background = tuple(c + rng.randint(-15, 15) for c in BACKGROUNDS[person % 5])
    skin, hair = SKINS[person % 5], HAIRS[(person * 3) % 5]
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    s = size / 160
    dx, dy = rng.randint(-6, 6) * s, rng.randint(-5, 5) * s

    def box(x0, y0, x1, y1):
        return [x0 * s + dx, y0 * s + dy, x1 * s + dx, y1 * s + dy]

    line = max(1, int(4 * s))
    draw.ellipse(box(36, 18, 124, 90), fill=hair)
    draw.rectangle(box(55, 120, 105, 200), fill=skin)
    draw.ellipse(box(42, 28, 118, 138), fill=skin)
    for eye in (62, 98):
        draw.line(box(eye - 12, 56, eye + 10, 53), fill=hair, width=line)
        draw.ellipse(box(eye - 10, 64, eye + 10, 75), fill=(250, 250, 250))
        draw.ellipse(box(eye - 5, 65, eye + 5, 74), fill=(25, 25, 25))
    nose = [(80, 72), (72, 100), (88, 100)]
    draw.polygon([(x * s + dx, y * s + dy) for x, y in nose], fill=tuple(c - 45 for c in skin))
    draw.arc(box(62, 104, 98, 122), 10, 170, fill=(110, 30, 30), width=line)
    return image.filter(ImageFilter.GaussianBlur(s))


@functools.cache
def _detectable_variant(person, index, size):
    from training.ml.faces import detect_faces

    # A few drawings are not taken for faces; use the next one that is, deterministically.
    for variant in range(index * 50, index * 50 + 50):
        if len(detect_faces(draw_face(person, variant, size))) == 1:
            return variant
    raise RuntimeError(f"no detectable face for person {person}, photo {index}")


def person_image(person, index, size=128):
    """A photo with exactly one face, of 'person' (an int)."""
    return draw_face(person, _detectable_variant(person, index, size), size)


@functools.cache
def _group_photo(people, size):
    from training.ml.faces import detect_faces

    gap = size // 4
    for attempt in range(20):
        photo = Image.new("RGB", ((size + gap) * len(people) + gap, size + 2 * gap), (128,) * 3)
        for slot, person in enumerate(people):
            face = person_image(person, 1000 + 10 * attempt + slot, size)
            photo.paste(face, (gap + slot * (size + gap), gap))
        if len(detect_faces(photo)) == len(people):
            return photo
    raise RuntimeError(f"no group photo of {people} with every face detectable")


def group_photo(people, size=128):
    """One photo with a face of each of people, side by side, every face detectable."""
    return _group_photo(tuple(people), size).copy()


def shapes_image(seed=0, size=96):
    """A photo with no face in it."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (rng.randint(0, 255), 200, 90))
    ImageDraw.Draw(image).rectangle([10, 10, size // 2, size // 2], fill=(0, 0, 0))
    return image


def encode(image, fmt="JPEG", **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg_bytes(person=0, index=0, size=128):
    return encode(person_image(person, index, size))


def write_people(folder, people=3, per_person=4, size=128):
    """Write folder/<Person N>/<i>.jpg; returns the folder."""
    for person in range(people):
        target = folder / f"Person {person}"
        target.mkdir(parents=True, exist_ok=True)
        for index in range(per_person):
            (target / f"{index}.jpg").write_bytes(jpeg_bytes(person, index, size))
    return folder


def png_bomb(width=100_000, height=100_000):
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )
