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


def hostile_zips():
    """Every hostile or odd zip of test_hostile_zips.py that needs no setting changed, for
    bench/hostile_inputs.py: {name: (bytes, the refusal's message, or None when the zip is
    previewed, its bad members skipped with their reason)}."""
    import io

    from PIL import Image

    from tests.images import encode

    photo = jpeg_bytes(0, 0)
    inner = make_zip({"Eve/evil.jpg": photo})
    corrupted = bytearray(make_zip({"Ada/one.jpg": photo}, zipfile.ZIP_STORED))
    corrupted[200:260] = b"x" * 60
    tiny_files = io.BytesIO()
    with zipfile.ZipFile(tiny_files, "w", zipfile.ZIP_STORED) as archive:
        for n in range(100_000):
            archive.writestr(f"p/{n}", b"")
    flat = encode(Image.new("RGB", (140, 140), (10, 20, 30)), "BMP")
    truncated = people_zip(1, 3)
    noise = random.Random(0).randbytes(16 * 1024 * 1024)
    return {
        "path-out-of-its-folder": (
            make_zip({"Ada/ok.jpg": photo, "Ada/../../etc/evil.jpg": photo}),
            "leads out of its folder",
        ),
        "absolute-path": (make_zip({"Ada/ok.jpg": photo, "/etc/cron.d/evil": photo}),
                          "absolute path"),
        "windows-drive-path": (make_zip({"Ada/ok.jpg": photo, "C:\\Windows\\evil.jpg": photo}),
                               "absolute path"),
        "symbolic-link": (
            zip_with((zipfile.ZipInfo("Ada/ok.jpg"), photo), symlink_entry("Ada/x.jpg", "/etc")),
            "symbolic link",
        ),
        "zip-bomb": (make_zip({"Ada/ok.jpg": photo, "Ada/bomb.jpg": b"\0" * (20 * 1024 * 1024)}),
                     "zip bomb"),
        "lying-sizes": (lying_sizes_zip(), "damaged"),
        "hundred-thousand-files": (tiny_files.getvalue(), "100,000 files"),
        "not-a-zip": (photo, "not a zip file"),
        "truncated-zip": (truncated[: len(truncated) // 2], "not a zip file"),
        "corrupted-data": (bytes(corrupted), "damaged"),
        "empty-zip": (make_zip({}), "The zip is empty"),
        "no-person-folders": (make_zip({"one.jpg": photo, "two.jpg": photo}),
                              "no photos inside person folders"),
        "overlapping-entries": (overlapping_zip(30), "overlap"),
        "small-zip-inflating-far": (make_zip({f"Ada/{n}.bmp": flat for n in range(200)}),
                                    "zip bomb"),
        "zip-inside-the-zip": (make_zip({"Ada/ok.jpg": photo, "Ada/more.zip": inner}), None),
        "zip-renamed-jpg-inside": (make_zip({"Ada/ok.jpg": photo, "Ada/sneaky.jpg": inner}),
                                   None),
        "oversized-photo-inside": (make_zip({"Ada/ok.jpg": photo, "Ada/big.jpg": noise}), None),
        "names-in-any-script": (
            make_zip({
                "Zoë Ångström/фото 1.jpg": jpeg_bytes(0, 1),
                "李小龍/写真 二.jpg": jpeg_bytes(1, 1),
                "محمد صلاح/صورة.jpg": jpeg_bytes(2, 1),
                f"{'Ł' * 150} {'ø' * 100}/{'x' * 200}.jpg": jpeg_bytes(3, 1),
            }),
            None,
        ),
        "utf8-names-without-the-flag": (
            make_zip({"JosXY/1.jpg": photo}).replace(b"JosXY", "José".encode()),
            None,
        ),
        "wrapping-folder-and-system-files": (
            make_zip({
                "people/Ada/1.jpg": jpeg_bytes(0, 2),
                "people/readme.txt": b"hello",
                "__MACOSX/people/Ada/._1.jpg": b"junk",
                "people/Ada/.DS_Store": b"junk",
            }),
            None,
        ),
        "one-person-in-two-cases": (
            make_zip({"Case Person/1.jpg": jpeg_bytes(1, 2),
                      "case person/2.jpg": jpeg_bytes(1, 3)}),
            None,
        ),
        "invisible-folder-names": (
            make_zip({
                "Ada/1.jpg": jpeg_bytes(0, 3),
                "\u200b/2.jpg": jpeg_bytes(0, 4),
                "Eve\u202eevil/3.jpg": jpeg_bytes(0, 5),
            }),
            None,
        ),
    }  # fmt: skip
