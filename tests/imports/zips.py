"""Zips built in the tests, hostile ones included."""

import io
import random
import stat
import struct
import zipfile
import zlib

from tests.images import jpeg_bytes


def make_zip(files, compression=zipfile.ZIP_DEFLATED):
    """files: {name: bytes} (or {ZipInfo: bytes}) -> the bytes of a zip holding them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def people_zip(people=2, per_person=3, prefix=""):
    """A well-formed zip: <prefix>Person N/<i>.jpg."""
    return make_zip(
        {
            f"{prefix}Person {person}/{index}.jpg": jpeg_bytes(person, index)
            for person in range(people)
            for index in range(per_person)
        }
    )


def symlink_entry(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zip_with(*entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def lying_sizes_zip():
    """A zip whose header says a member is 1 KB while its data unpacks to 50 MB."""
    big = b"\0" * (50 * 1024 * 1024)
    raw = bytearray(make_zip({"Person 0/bomb.jpg": big}))
    # Patch the uncompressed size in the local header (offset 22) and in the central
    # directory entry (offset 24 from its signature) to 1024.
    raw[22:26] = (1024).to_bytes(4, "little")
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    return bytes(raw)


def overlapping_zip(copies=30, kernel_size=20_000):
    """David Fifield's overlapping zip: every member's deflate data starts with a stored
    block quoting the next member's local header, then runs on into that member's data, so
    all members share one kernel. Each member's sizes look like a photo's (incompressible
    kernel, no suspicious ratio); together they unpack to about copies x copies / 2 times
    the kernel from a zip not much larger than it."""
    kernel = random.Random(0).randbytes(kernel_size)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(kernel) + packer.flush()
    names = [f"Person 0/{n}.jpg".encode() for n in range(copies)]
    headers, sizes = [b""] * copies, [None] * copies
    plain, crc, csize = kernel, zlib.crc32(kernel), len(packed)
    for n in reversed(range(copies)):
        if n < copies - 1:  # this member's data = quote of the next header + the next data
            quoted = headers[n + 1]
            plain = quoted + plain
            crc = zlib.crc32(plain)
            csize += 5 + len(quoted)
        sizes[n] = (crc, csize, len(plain))
        headers[n] = (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, csize, len(plain), len(names[n]), 0
            )
            + names[n]
        )
    body, offsets = b"", []
    for n in range(copies):
        offsets.append(len(body))
        body += headers[n]
        if n < copies - 1:
            quoted = headers[n + 1]
            length = len(quoted)
            body += b"\x00" + struct.pack("<HH", length, length ^ 0xFFFF)
    body += packed
    directory = b"".join(
        struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, *sizes[n],
            len(names[n]), 0, 0, 0, 0, 0, offsets[n],
        ) + names[n]
        for n in range(copies)
    )  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(directory), len(body), 0)
    return body + directory + end
