"""Files in and out: atomic writes, hashes, and the one error type for bad input.

Every output is written to a temporary file beside its target and renamed into place, so an
interrupted run never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, outputs should get what open() gives


class InputError(Exception):
    """Bad input from the user: the CLI prints the one-line message and exits with code 2."""


def atomic_write(path, data: bytes | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dumps_json(obj) -> str:
    """Sorted keys, no NaN (a non-finite number is a bug upstream, not a value to store)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path, obj) -> Path:
    return atomic_write(path, dumps_json(obj))


def read_json(path, what: str):
    """Parsed JSON, or InputError naming the file and what it should have been."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read {what}: {e.strerror or e}")
    except ValueError as e:  # bad JSON or bad UTF-8
        raise InputError(f"{path}: {what} is not valid JSON ({e})")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
