"""Write-ahead journal of the service: one fsynced JSON line per acknowledged write.

The journal lives inside the index directory (``<store>/<name>/journal.jsonl``). A write is
appended and fsynced *before* it is applied and acknowledged; loading replays it on top of the
saved index. Compaction saves the whole index with :meth:`Store.save`, which builds a fresh
directory and swaps it in atomically: the new directory has no journal, so the base and the
journal are replaced together and a crash at any point leaves either (old base + whole journal)
or (new base, empty journal).

A crash in the middle of an append can leave a torn last line. Such a line was never fsynced,
so never acknowledged: it is dropped (and cut from the file) when the journal is opened.
Vectors are written as JSON numbers from float32 values, which round-trips them exactly.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from .._io import fsync_dir as _fsync_dir
from ..errors import InputError, MissingKeyError, StoreError

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"


def journal_path(index_dir: Path) -> Path:
    return Path(index_dir) / JOURNAL_FILE


def read_journal(index_dir: Path) -> tuple[list[dict], int]:
    """Entries of the journal (oldest first) and the byte length of its intact part."""
    path = journal_path(index_dir)
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    entries, good = [], 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:  # torn tail: the append never finished, so it was never acknowledged
            log.warning("%s: dropping an unfinished last entry (%d bytes)", path, len(data) - pos)
            break
        line = data[pos:end]
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or entry.get("op") not in ("upsert", "remove"):
                raise ValueError("not a journal entry")
        except ValueError as exc:
            if end + 1 == len(data):  # a damaged last line was never acknowledged either
                log.warning("%s: dropping a damaged last entry (%s)", path, exc)
                break
            raise StoreError(f"{path}: entry {len(entries) + 1} is damaged ({exc}); "
                             "move the journal aside to load the last compacted state") from None
        entries.append(entry)
        pos = end + 1
        good = pos
    return entries, good


def apply_entry(index, entry: dict) -> None:
    """Apply one journal entry to a VectorIndex (the same call the service made)."""
    if entry["op"] == "upsert":
        vectors = np.asarray(entry["vectors"], dtype=np.float32).reshape(len(entry["keys"]), index.dim)
        index.upsert(entry["keys"], vectors)
    else:
        index.remove(entry["keys"], missing_ok=True)


def replay(index, entries) -> int:
    """Apply entries in order; returns how many applied. A write the service refused is skipped."""
    applied = 0
    for n, entry in enumerate(entries, 1):
        try:
            apply_entry(index, entry)
            applied += 1
        except (InputError, MissingKeyError, KeyError, ValueError) as exc:
            log.warning("journal entry %d skipped on replay: %s", n, exc)
    return applied


class Journal:
    """Append-only, fsynced journal file of one index directory (not thread-safe: callers lock)."""

    def __init__(self, index_dir: Path, intact_bytes: int | None = None, entries: int = 0):
        self.path = journal_path(index_dir)
        self.entries = entries
        self._fh = None
        if self.path.exists() and intact_bytes is not None and self.path.stat().st_size > intact_bytes:
            with open(self.path, "r+b") as fh:  # cut a torn tail so the next append starts clean
                fh.truncate(intact_bytes)
                fh.flush()
                os.fsync(fh.fileno())

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
        if self._fh is None:
            new = not self.path.exists()
            self._fh = open(self.path, "ab")
            if new:  # make the new file's directory entry durable too
                _fsync_dir(self.path.parent)
        start = self._fh.tell()
        try:
            self._fh.write(line.encode("utf-8"))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except BaseException:
            # e.g. disk full: cut what was written, so a later append never follows a torn line
            try:
                self._fh.truncate(start)
            except OSError:
                pass
            self.close()
            raise
        self.entries += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def encode_upsert(keys: list[str], vectors: np.ndarray) -> dict:
    # float32 -> Python float is exact and JSON keeps its shortest repr: the round trip is lossless
    return {"op": "upsert", "keys": list(keys), "vectors": np.asarray(vectors, dtype=np.float32).tolist()}


def encode_remove(keys: list[str]) -> dict:
    return {"op": "remove", "keys": list(keys)}
