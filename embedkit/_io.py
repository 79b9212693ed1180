"""Durable file writes shared by every writer in embedkit (embeddings, models, indexes, journal).

``atomic_write_bytes`` writes a temporary file beside the target, fsyncs it, renames it over
the target and fsyncs the directory, so that after a crash the target holds either the old
bytes or the new ones, and after it returns the new ones survive a power cut.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path) -> None:
    """fsync a directory so that renames and new entries in it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically and durably (file and directory fsync)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
