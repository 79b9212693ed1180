"""Write-ahead journal of the service: one fsynced, checksummed line per acknowledged write.

The journal lives inside the index directory (``<store>/<name>/journal.jsonl``). A write is
appended and fsynced *before* it is applied and acknowledged; loading replays it on top of the
saved index. Compaction saves the whole index with :meth:`Store.save`, which builds a fresh
directory and swaps it in atomically: the new directory has no journal, so the base and the
journal are replaced together and a crash at any point leaves either (old base + whole journal)
or (new base, empty journal).

Each line is one JSON object: ``seq`` (1, 2, 3... within one journal), ``op`` ("upsert" or
"remove"), ``keys``, for upserts ``vectors`` (JSON numbers from float32 values, which
round-trip exactly) and optionally ``payload`` (one JSON object per key), and last ``crc``: the
CRC-32 (8 hex digits) of the line's bytes before ``,"crc"`` with ``}`` appended, i.e. of the
entry's JSON without its checksum. What is promised when a journal is read:

* every entry whose checksum matches and whose ``seq`` follows the previous one is applied, in
  order, including a complete last entry that lost only its final newline;
* anything else (a changed byte, a garbled or missing line in the middle, a sequence gap, a
  line that is not an entry) is **refused**: loading raises a one-line StoreError naming the
  journal and line, applies nothing, and the journal is kept untouched (it is never deleted or
  compacted away unless it replayed cleanly);
* the single exception is a torn tail: a last line without a newline that does not verify. An
  append is acknowledged only after the whole line *and* its newline are fsynced, so such a
  tail was never acknowledged; it is ignored (with a warning) and cut before the next append.

A failed append (disk full or any error from write, fsync or close) truncates the journal back
to its previous length, so the file is exactly as before, and the journal stays usable: the
next append reopens it. Journals written by embedkit before checksums (plain JSON lines) are
still read, with the same refusal of damaged lines.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from .._io import fsync_dir as _fsync_dir
from ..errors import InputError, MissingKeyError, StoreError

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
_CRC = b',"crc":"'
_TAIL = len(_CRC) + 8 + 2  # ,"crc":"xxxxxxxx"}

def journal_path(index_dir: Path) -> Path:
    return Path(index_dir) / JOURNAL_FILE


def encode_line(entry: dict) -> bytes:
    body = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return b"%s%s%08x\"}\n" % (body[:-1], _CRC, zlib.crc32(body))


def _is_checked(line: bytes) -> bool:
    return len(line) > _TAIL and line[-_TAIL:-10] == _CRC and line.endswith(b'"}')


def _decode(line: bytes) -> tuple[dict | None, str]:
    """(entry, "") for a verified line, else (None, why)."""
    if _is_checked(line):
        body = line[:-_TAIL] + b"}"
        try:
            crc = int(line[-10:-2], 16)
        except ValueError:
            return None, "unreadable checksum"
        if zlib.crc32(body) != crc:
            return None, "checksum mismatch"
        try:
            entry = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return None, f"not JSON ({exc})"
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int) or isinstance(entry["seq"], bool):
            return None, "no sequence number"
    else:  # a journal line of embedkit before checksums: plain JSON, no seq
        try:
            entry = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return None, f"not JSON ({exc})"
        if not isinstance(entry, dict) or "seq" in entry or "crc" in entry:
            return None, "no valid checksum"
    if entry.get("op") not in ("upsert", "remove") or not isinstance(entry.get("keys"), list):
        return None, "not a journal entry (op/keys)"
    if entry["op"] == "upsert" and not isinstance(entry.get("vectors"), list):
        return None, "upsert without vectors"
    if "payload" in entry and not (isinstance(entry["payload"], list) and len(entry["payload"]) == len(entry["keys"])):
        return None, "payload does not hold one object per key"
    return entry, ""


def read_journal(index_dir: Path) -> tuple[list[dict], int]:
    """Entries of the journal (oldest first) and the byte length of its verified part.

    Raises StoreError (one line) on damage; see the module doc. The file is never changed here.
    """
    path = journal_path(index_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror})") from None
    entries, good, pos, line_no = [], 0, 0, 0
    checked = None  # True: checksummed lines, False: old plain lines
    while pos < len(data):
        line_no += 1
        end = data.find(b"\n", pos)
        last = end < 0
        line = data[pos:] if last else data[pos:end]
        entry, why = _decode(line)
        if entry is not None:
            kind = "seq" in entry
            if checked is None:
                checked = kind
            if kind != checked:
                entry, why = None, "mixes checksummed and plain lines"
            elif kind and entry["seq"] != len(entries) + 1:
                entry, why = None, f"sequence number {entry['seq']} where {len(entries) + 1} was expected " \
                                   "(a line is missing or was merged)"
        if entry is None:
            if last:  # torn tail of an append that never finished: never acknowledged
                log.warning("%s: ignoring an unfinished last line (%d bytes, %s); it was never acknowledged",
                            path, len(data) - pos, why)
                break
            raise StoreError(f"{path}:{line_no}: journal entry is damaged ({why}); nothing was applied and the "
                             "journal is kept: repair or move it aside (the index then loads without these writes)")
        entries.append(entry)
        pos = len(data) if last else end + 1
        good = pos
    return entries, good


def _accepts_payload(index) -> bool:
    try:
        return "payload" in inspect.signature(index.upsert).parameters
    except (TypeError, ValueError):
        return False


def apply_entry(index, entry: dict) -> None:
    """Apply one journal entry to a VectorIndex (the same call the service made)."""
    if entry["op"] == "upsert":
        vectors = np.asarray(entry["vectors"], dtype=np.float32).reshape(len(entry["keys"]), index.dim)
        if "payload" in entry:
            if not _accepts_payload(index):
                raise StoreError("the journal holds item payloads, which this embedkit's VectorIndex cannot "
                                 "apply; upgrade embedkit")
            index.upsert(entry["keys"], vectors, payload=entry["payload"])
        else:
            index.upsert(entry["keys"], vectors)
    else:
        index.remove(entry["keys"], missing_ok=True)


def replay(index, entries, source="the journal") -> int:
    """Apply entries in order; returns how many were applied (all of them).

    The service validates a write before journalling it, so every entry applies; one that does
    not (another dimension, a vector that is not finite...) means the journal does not belong to
    this index or was altered: StoreError, one line, and the caller loads nothing."""
    for n, entry in enumerate(entries, 1):
        try:
            apply_entry(index, entry)
        except (InputError, MissingKeyError, KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{source}: entry {n} cannot be applied ({' '.join(str(exc).split())}); nothing was "
                             "loaded and the journal is kept: repair or move it aside") from None
    return len(entries)


class Journal:
    """Append-only, fsynced journal file of one index directory (not thread-safe: callers lock).

    ``intact_bytes``: the verified length :func:`read_journal` returned (a torn tail beyond it is
    cut before the first append); ``entries``: how many entries it holds (the next ``seq`` is
    ``entries + 1``).
    """

    def __init__(self, index_dir: Path, intact_bytes: int | None = None, entries: int = 0):
        self.path = journal_path(index_dir)
        self.entries = entries
        self._fd = None
        self._size = intact_bytes  # the length the file must have (None: whatever it has)
        self._plain = False
        if entries and intact_bytes:  # go on in the format the journal was written in
            with open(self.path, "rb") as fh:
                self._plain = not _is_checked(fh.readline().rstrip(b"\n"))

    @property
    def bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _open(self) -> None:
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if self._size is None:
                self._size = size
            elif size > self._size:  # a torn tail, or what a failed append could not cut
                os.ftruncate(fd, self._size)
                os.fsync(fd)
            elif size < self._size:
                raise StoreError(f"{self.path}: shorter ({size} bytes) than the {self._size} bytes written; "
                                 "it was changed behind the service")
            if new:  # make the new file's directory entry durable too
                _fsync_dir(self.path.parent)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def append(self, entry: dict) -> None:
        """Append ``entry`` (its ``seq`` is set here) and fsync; on any error the file is cut
        back to its previous length and the error raised (nothing was written)."""
        if self._fd is None:
            self._open()
        if self._plain:
            line = (json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n").encode()
        else:
            line = encode_line({"seq": self.entries + 1, **entry})
        start = self._size
        try:
            view = memoryview(line)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except BaseException:
            try:  # disk full...: cut what was written, so the file is as it was
                os.ftruncate(self._fd, start)
                os.fsync(self._fd)
            except OSError:
                pass  # the next _open() cuts it (the file is longer than self._size)
            self.close(quiet=True)
            raise
        self._size = start + len(line)
        self.entries += 1

    def close(self, quiet: bool = False) -> None:
        """Close the file (the handle is dropped even when close itself fails)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                if not quiet:
                    raise


def encode_upsert(keys: list[str], vectors: np.ndarray, payload: list | None = None) -> dict:
    # float32 -> Python float is exact and JSON keeps its shortest repr: the round trip is lossless
    entry = {"op": "upsert", "keys": list(keys), "vectors": np.asarray(vectors, dtype=np.float32).tolist()}
    if payload is not None:
        entry["payload"] = list(payload)
    return entry


def encode_remove(keys: list[str]) -> dict:
    return {"op": "remove", "keys": list(keys)}
