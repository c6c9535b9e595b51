"""Model artifact files: written atomically, checksummed, loadable with weights_only=True."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import torch

FORMAT_VERSION = 1
_REQUIRED_KEYS = (
    "format_version",
    "architecture",
    "state_dict",
    "classes",
    "image_size",
    "mean",
    "std",
    "metrics",
    "calibration",
    "config",
)
_PLAIN_TYPES = (str, int, float, bool, type(None))


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable, tampered with or of an unknown format."""


def save_checkpoint(
    path,
    *,
    architecture: str,
    state_dict: dict,
    classes: list,
    image_size: int,
    mean,
    std,
    metrics: dict,
    calibration: dict,
    config: dict,
) -> str:
    """Write a checkpoint to path and return the sha256 hex digest of the file.

    The file is written to a temporary name in the same folder, fsynced and renamed over
    path, so readers see either the old file or the complete new one, never half of it.
    Creates the folder if needed. Tensors are copied to the CPU. Raises TypeError when
    classes, metrics, calibration or config hold anything but dicts, lists, str, int,
    float, bool, None and tensors (anything else would make weights_only loading fail
    later).
    """
    payload = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "classes": list(classes),
        "image_size": int(image_size),
        "mean": [float(x) for x in mean],
        "std": [float(x) for x in std],
        "metrics": metrics,
        "calibration": _to_cpu(calibration),
        "config": config,
    }
    for key in ("architecture", "classes", "metrics", "calibration", "config"):
        _check_plain(payload[key], key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_atomically(path, payload)


def file_sha256(path) -> str:
    """The sha256 hex digest of the file at path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(path, expected_sha256: str | None = None) -> dict:
    """Read and check a checkpoint written by save_checkpoint; returns its dict.

    When expected_sha256 is given, the file's bytes are checked against it before any
    unpickling. Raises CheckpointError when the file is missing, unreadable, not a
    checkpoint, of another format_version, or its checksum does not match.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    # Hash and load the same bytes, so a file replaced in between cannot slip through.
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise CheckpointError(
                f"checksum mismatch for {path}: expected {expected_sha256}, got {actual}; "
                "the file was modified or replaced since it was recorded"
            )
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load has no single error type for garbage input
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    _check_format(checkpoint, path)
    return checkpoint


def _write_atomically(path: Path, payload: dict) -> str:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        sha256 = file_sha256(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return sha256


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_plain(value, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"{where} has a key of type {type(key).__name__}: {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif isinstance(value, torch.Tensor):
        return  # weights_only loading reads tensors; class centroids are stored as one
    elif type(value) not in _PLAIN_TYPES:
        # type() rather than isinstance: numpy.float64 is a float subclass but is not
        # loadable with weights_only=True.
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__name__}; a checkpoint "
            "holds only dicts, lists, str, int, float, bool, None and tensors"
        )


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_cpu(item) for item in value]
    return value


def _check_format(checkpoint, path) -> None:
    if not isinstance(checkpoint, dict) or "format_version" not in checkpoint:
        raise CheckpointError(f"{path} is not a faceweb checkpoint")
    if checkpoint["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {checkpoint['format_version']!r}; this version of "
            f"faceweb reads format_version {FORMAT_VERSION}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
