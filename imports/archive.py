"""Reading a zip of people's photos without trusting it.

A zip is refused whole (ArchiveRefused, nothing stored) when anything in it is hostile: a
path that climbs out (`../`) or starts at the root, a symbolic link, sizes or compression
ratios of a zip bomb, more files than the limit, a damaged or empty archive. Entries that
are merely not photos of a person (a file at the top level, a system file, an archive
inside the archive, an encrypted or oversized file) are skipped, each with its reason.

Sizes written in the zip's headers are checked first, so a bomb is refused before anything
is decompressed, and every read is bounded as well, since headers can lie.
"""

import contextlib
import hashlib
import io
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError

from identities.models import normalise_name
from identities.uploads import ALLOWED_FORMATS

# Archives inside the archive are skipped, not opened: opening them is how nested zip bombs
# multiply, and a person's folder holds photos.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
SYSTEM_PARTS = {"__MACOSX", "Thumbs.db", "desktop.ini", ".DS_Store"}
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Below this size a high compression ratio is harmless (a small flat image compresses well).
RATIO_CHECK_FROM_BYTES = 64 * 1024
ZIP_MAGIC = b"PK\x03\x04"


class ArchiveRefused(Exception):
    """The whole zip is refused; the message says why, for the person who sent it."""


@dataclass
class Entry:
    """One file of the zip, as the import will treat it."""

    position: int  # index in ZipFile.infolist(): how the worker finds it again
    path: str  # the name as a person reads it: "/"-separated, NFC
    person: str = ""  # the folder that names the person; "" for a file outside any folder
    size: int = 0
    sha256: str = ""
    skip_reason: str = ""
    info: zipfile.ZipInfo | None = field(default=None, repr=False)


def open_zip(file):
    """A ZipFile over a seekable binary file; ArchiveRefused when it is not a readable zip."""
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ArchiveRefused("This is not a zip file, or it is damaged.") from None


def scan_zip(zip_file):
    """Check every entry of an open zip and read each photo once (bounded).

    Returns [Entry] for every file, with person, size, sha256 and skip_reason filled.
    Raises ArchiveRefused for anything hostile. Reads only; safe to run twice.
    """
    infos = [info for info in zip_file.infolist() if not info.is_dir()]
    limit = settings.FACEWEB_IMPORT_MAX_FILES
    if len(infos) > limit:
        raise ArchiveRefused(f"The zip holds {len(infos):,} files; the limit is {limit:,}.")
    check_no_overlap(zip_file)
    positions = {id(info): n for n, info in enumerate(zip_file.infolist())}
    entries = [check_header(info, positions[id(info)]) for info in infos]
    check_total_size(entries, packed_size(zip_file))
    assign_people(entries)
    budget = Budget(unpack_limit(packed_size(zip_file)))
    for entry in entries:
        if not entry.skip_reason:
            read_for_preview(zip_file, entry, budget)
    if not any(not e.skip_reason for e in entries):
        raise ArchiveRefused(empty_message(entries))
    return entries


def empty_message(entries):
    if not entries:
        return "The zip is empty."
    return (
        "The zip holds no photos inside person folders. Lay it out one folder per person, "
        "e.g. 'Ada Lovelace/photo1.jpg'."
    )


def member_name(info):
    """The entry's name as its author meant it.

    Zip tools that write UTF-8 without setting the zip's UTF-8 flag are common; zipfile then
    decodes the bytes as cp437, which turns every accent into noise. Undo that when the
    bytes are valid UTF-8, and use NFC so a folder from macOS (NFD) matches a typed name.
    """
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return unicodedata.normalize("NFC", name)


def check_header(info, position):
    """An Entry for one zip member, from its header alone; ArchiveRefused when hostile."""
    raw = member_name(info)
    path = raw.replace("\\", "/")
    if path.startswith("/") or WINDOWS_DRIVE.match(path):
        raise ArchiveRefused(f"The zip holds an absolute path ({raw!r}); nothing was imported.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRefused(
            f"The zip holds a path that leads out of its folder ({raw!r}); nothing was imported."
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveRefused(
            f"The zip holds a symbolic link ({raw!r}); links are not followed, so nothing was "
            "imported."
        )
    check_ratio(info, raw)
    entry = Entry(position=position, path="/".join(parts), size=info.file_size, info=info)
    entry.skip_reason = skip_reason_from_header(info, parts)
    return entry


def check_ratio(info, raw):
    ratio = settings.FACEWEB_IMPORT_MAX_RATIO
    if info.file_size > RATIO_CHECK_FROM_BYTES and info.file_size > ratio * max(
        info.compress_size, 1
    ):
        raise ArchiveRefused(
            f"{raw!r} would expand {info.file_size // max(info.compress_size, 1):,} times its "
            "packed size: this looks like a zip bomb, so nothing was imported."
        )


def skip_reason_from_header(info, parts):
    name = parts[-1] if parts else ""
    if is_system(parts):
        return "A hidden or system file; not a photo."
    if name.lower().endswith(ARCHIVE_SUFFIXES):
        return "An archive inside the zip; archives inside archives are not opened."
    if info.flag_bits & 0x1:
        return "The file is encrypted."
    if info.file_size > settings.FACEWEB_MAX_UPLOAD_BYTES:
        return f"The file is larger than the {settings.FACEWEB_MAX_UPLOAD_BYTES // 2**20} MB limit."
    return ""


def is_system(parts):
    return any(part in SYSTEM_PARTS or part.startswith(".") for part in parts)


def packed_size(zip_file):
    """Bytes of the zip's members (everything before its central directory)."""
    return zip_file.start_dir


def unpack_limit(packed):
    """What a zip this size may unpack to: photos barely compress, so far more than the
    ratio limit times its size is a bomb whatever each entry's header says."""
    ratio_limit = settings.FACEWEB_IMPORT_MAX_RATIO * max(packed, RATIO_CHECK_FROM_BYTES)
    return min(settings.FACEWEB_IMPORT_MAX_TOTAL_BYTES, ratio_limit)


def check_no_overlap(zip_file):
    """Refuse members whose data overlap another's (one compressed kernel shared by
    thousands of entries: a zip of half a megabyte unpacking to gigabytes)."""
    infos = sorted(zip_file.infolist(), key=lambda info: info.header_offset)
    if not infos:
        return
    ends = [data_end(zip_file, info) for info in infos]
    starts = [info.header_offset for info in infos[1:]] + [zip_file.start_dir]
    for info, end, next_start in zip(infos, ends, starts, strict=True):
        if end > next_start:
            raise ArchiveRefused(
                f"The zip's entries overlap (at {member_name(info)!r}), as in a zip bomb; "
                "nothing was imported."
            )


def data_end(zip_file, info):
    """Where a member's compressed data ends, from its local header."""
    zip_file.fp.seek(info.header_offset)
    header = zip_file.fp.read(30)
    if len(header) < 30 or header[:4] != ZIP_MAGIC:
        raise ArchiveRefused(f"The zip is damaged at {member_name(info)!r}; nothing was imported.")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length + info.compress_size


def check_total_size(entries, packed):
    total = sum(e.size for e in entries if not e.skip_reason)
    if total > unpack_limit(packed) and total > settings.FACEWEB_IMPORT_MAX_RATIO * max(
        packed, RATIO_CHECK_FROM_BYTES
    ):
        raise ArchiveRefused(
            f"The zip would unpack to {total / 2**20:,.0f} MB from {packed / 2**20:,.1f} MB: "
            "this looks like a zip bomb, so nothing was imported."
        )
    limit = settings.FACEWEB_IMPORT_MAX_TOTAL_BYTES
    if total > limit:
        raise ArchiveRefused(
            f"The zip would unpack to {total / 2**20:,.0f} MB; the limit is "
            f"{limit / 2**20:,.0f} MB. Split it into smaller zips."
        )


def assign_people(entries):
    """The first folder names the person, after one wrapping folder common to every file
    (what "Compress folder" makes of a folder of people) is set aside."""
    paths = [e.path.split("/") for e in entries if not is_system(e.path.split("/"))]
    tops = {parts[0] for parts in paths}
    wrapped = len(tops) == 1 and any(len(parts) > 2 for parts in paths)
    spellings = {}
    for entry in entries:
        if is_system(entry.path.split("/")):
            continue  # __MACOSX/... names nobody
        parts = entry.path.split("/")[1:] if wrapped else entry.path.split("/")
        if len(parts) < 2:
            entry.skip_reason = entry.skip_reason or "Not inside a person's folder."
            continue
        entry.person = person_name(parts[0])
        if not entry.person and not entry.skip_reason:
            entry.skip_reason = "The folder's name cannot be a person's name."
        # "Case Person" and "case person" are one person (names are unique in any case):
        # the first spelling in the zip names them.
        entry.person = spellings.setdefault(entry.person.lower(), entry.person)


def person_name(folder):
    """A folder name as an identity name, by the one rule for names (identities.models.
    normalise_name), within the name field's length; "" when it cannot be a name."""
    try:
        return normalise_name(folder)[:200]
    except ValidationError:
        return ""


class Budget:
    """Counts the bytes really decompressed, against the total the import may unpack."""

    def __init__(self, limit):
        self.left = limit

    def spend(self, count):
        self.left -= count
        if self.left < 0:
            raise ArchiveRefused(
                "The zip unpacks to more than its headers say (a zip bomb?): nothing was imported."
            )


def read_member(zip_file, info, budget=None):
    """The bytes of one member, never more than the per-photo limit plus one byte.

    Raises ArchiveRefused when the zip is damaged there (bad checksum, truncated data) or
    when the bytes overrun the budget; returns None for a compression method zipfile
    cannot read.
    """
    limit = settings.FACEWEB_MAX_UPLOAD_BYTES
    try:
        with zip_file.open(info) as member:
            data = member.read(limit + 1)
    except NotImplementedError:
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveRefused(
            f"The zip is damaged at {member_name(info)!r} ({exc}); nothing was imported."
        ) from None
    if budget is not None:
        budget.spend(len(data))
    return data


def read_for_preview(zip_file, entry, budget):
    data = read_member(zip_file, entry.info, budget)
    if data is None:
        entry.skip_reason = "Compressed with a method faceweb cannot read; zip it again."
        return
    entry.size = len(data)
    entry.sha256 = hashlib.sha256(data).hexdigest()
    entry.skip_reason = sniff(data)


def sniff(data):
    """Why these bytes will not make a photo, as far as the header tells; "" when they may.

    Only a forecast for the preview: the import itself passes every file through
    identities.uploads.clean_image, which has the last word.
    """
    if not data:
        return "The file is empty."
    if data.startswith(ZIP_MAGIC):
        return "An archive inside the zip; archives inside archives are not opened."
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ALLOWED_FORMATS:
                return f"{image.format} images are not accepted."
    except Image.DecompressionBombError:
        return "The image has far too many pixels."
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "Not an image faceweb can read."
    return ""
