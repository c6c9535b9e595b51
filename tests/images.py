"""Small generated photos for tests: each 'person' is a distinct colour and pattern."""

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw

PALETTE = [(200, 40, 40), (40, 160, 60), (40, 70, 200), (220, 180, 30), (150, 50, 170)]


def person_image(person, index, size=64):
    """A learnable image of 'person' (an int): its colour, a shape, some noise."""
    rng = random.Random(person * 1000 + index)
    colour = PALETTE[person % len(PALETTE)]
    image = Image.new(
        "RGB", (size, size), tuple(min(255, c + rng.randint(-20, 20)) for c in colour)
    )
    draw = ImageDraw.Draw(image)
    offset = rng.randint(0, size // 8)
    box = [size // 4 + offset, size // 4, size * 3 // 4 + offset, size * 3 // 4]
    if person % 2:
        draw.ellipse(box, fill=(255, 255, 255))
    else:
        draw.rectangle(box, fill=(0, 0, 0))
    return image


def encode(image, fmt="JPEG", **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg_bytes(person=0, index=0, size=64):
    return encode(person_image(person, index, size))


def write_people(folder, people=3, per_person=4, size=64):
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
