"""Zips built in the tests, hostile ones included."""

import io
import stat
import zipfile

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
