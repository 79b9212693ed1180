"""The store: named, saved indexes under one directory (``indexes/<name>/`` by default).

The root is, in order: the ``root`` argument (``--store`` on the command line), the
``EMBEDKIT_STORE`` environment variable, or ``./indexes``.

What is promised (see :mod:`embedkit.index._persist` for the on-disk format and
:mod:`embedkit.store.journal` for the service's write journal):

* Writers of one name exclude each other across processes: :meth:`Store.save`,
  :meth:`Store.delete` and the service's compaction hold ``<root>/.<name>.lock``
  (:meth:`Store.lock`). A ``--force`` rebuild and the service's compaction therefore never
  interleave, and the service compacts only the copy it loaded (a rebuilt copy is reloaded,
  never overwritten). ``save(overwrite=False)`` racing another save of the same name gets a
  one-line error, never a raw OSError.
* Reading (:meth:`names`, :meth:`entries`, :meth:`exists`, :meth:`info`, :meth:`load`) never
  renames or deletes anything, and a read racing a save sees the old or the new copy.
* One damaged index never hides the others: :meth:`entries` lists each with its problem.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from .._io import name_lock
from ..errors import InputError, StoreError
from ..index import VectorIndex, read_manifest
from ..index._persist import _readable_dir, delete_index, read_consistent, writer_at_work

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LEFTOVER = re.compile(r"^\.(.+)\.old-[0-9a-f]{8}$")


def default_root() -> Path:
    return Path(os.environ.get("EMBEDKIT_STORE") or "indexes")


def check_name(name) -> str:
    """Index names are one path component: letters, digits, '_', '-', '.'; no '..'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InputError(f"index name {name!r} is not allowed: use 1-128 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit")
    return name


class Store:
    """A directory of saved indexes, one sub-directory per name."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    @contextmanager
    def lock(self, name: str, timeout: float | None = 600.0, what: str = "write"):
        """Hold the writer lock of ``name`` (``<root>/.<name>.lock``, an exclusive ``flock``):
        ``with store.lock(name): ...`` excludes every save, delete and compaction of that name in
        any process. Re-entrant in one process; StoreError after ``timeout`` seconds."""
        with name_lock(self.path(name), timeout=timeout, what=what):
            yield

    def exists(self, name: str) -> bool:
        """Whether a complete copy of ``name`` exists (read-only: renames nothing).

        A copy found a moment ago can be swapped out before its manifest is read (a save renames
        the old copy aside, then deletes it): while a writer is at work the name is looked up
        again instead of being reported missing."""
        path = self.path(name)
        for _ in range(8):
            found = _readable_dir(path)
            if (found / "manifest.json").exists():
                return True
            if not writer_at_work(path):  # no save between its renames: the answer stands
                return (path / "manifest.json").exists()
        return (path / "manifest.json").exists()

    def names(self) -> list[str]:
        """Names of the saved indexes (damaged ones included: see :meth:`entries`)."""
        if not self.root.is_dir():
            return []
        out = set()
        for p in self.root.iterdir():
            name = p.name
            if name.startswith("."):
                m = _LEFTOVER.match(name)  # a save between its two renames (or crashed there)
                if not m or not _NAME.fullmatch(m.group(1)) or (self.root / m.group(1)).exists():
                    continue
                name = m.group(1)
            elif not _NAME.fullmatch(name) or ".." in name:
                continue
            if self.exists(name):
                out.add(name)
        return sorted(out)

    def entries(self) -> list[dict]:
        """Every saved index with its state, for listings that must not fail for all when one is
        damaged: ``{"name", "damaged": bool, "error": one line or None, "manifest": dict or None}``.
        Only the manifest is checked here (schema, readable); loading also checks every file."""
        out = []
        for name in self.names():
            try:
                out.append({"name": name, "damaged": False, "error": None, "manifest": self.info(name)})
            except StoreError as exc:
                if not self.exists(name):  # deleted since names(): not listed
                    continue
                out.append({"name": name, "damaged": True, "error": " ".join(str(exc).split()), "manifest": None})
        return out

    def save(self, name: str, index: VectorIndex, *, meta: dict | None = None, extras: dict | None = None,
             overwrite: bool = False, lock_timeout: float | None = 600.0) -> Path:
        """Write ``index`` as ``name`` atomically; refuses to replace unless ``overwrite``.

        Holds the writer lock of ``name`` throughout: a concurrent save of the same name waits
        (``overwrite=True``) or, once the first has written it, is refused (``overwrite=False``)."""
        p = self.path(name)
        with name_lock(p, timeout=lock_timeout):
            if not overwrite and self.exists(name):
                raise InputError(f"an index named {name!r} already exists in the store {self.root.resolve()}; pass "
                                 "overwrite=True to replace it")
            index.save(p, meta=meta, extras=extras)
        return p

    def _require(self, name: str) -> Path:
        p = self.path(name)
        if not self.exists(name):
            raise StoreError(self.missing_message(name))
        return p

    def missing_message(self, name: str) -> str:
        """One line for a name that is not in the store: the store's absolute path, whether that
        folder exists, the names it holds and the closest ones (difflib)."""
        from difflib import get_close_matches

        root = self.root.resolve()
        if not self.root.is_dir():
            return (f"no index named {name!r}: the store folder {root} does not exist (pass the folder your indexes "
                    "are in as Store(root) / --store DIR, or set EMBEDKIT_STORE)")
        have = self.names()
        close = get_close_matches(name, have, n=3) if isinstance(name, str) else []
        hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
        listed = ", ".join(have[:20]) + (f", ... ({len(have)} in all)" if len(have) > 20 else "") if have else "none"
        return f"no index named {name!r} in the store {root} (indexes: {listed}){hint}"

    def load(self, name: str, mmap: bool = False) -> VectorIndex:
        """Load ``name``, with any writes the HTTP service journalled since its last full save."""
        return self.load_journalled(name, mmap=mmap)[0]

    def load_journalled(self, name: str, mmap: bool = False) -> tuple[VectorIndex, list[dict], int]:
        """:meth:`load`, and the journal it replayed: (index, journal entries, byte length of the
        journal's verified part), what the HTTP service needs to go on appending to that journal.

        The index and its journal are read from the same copy (retried if a save swapped it).
        A damaged journal raises StoreError and is left as it is."""
        from .journal import read_journal, replay

        path = self._require(name)

        def read(d):
            index = VectorIndex.load(d, mmap=mmap)
            entries, intact = read_journal(d)
            return index, entries, intact

        index, entries, intact = read_consistent(path, read)
        if entries:
            replay(index, entries, source=str(path / "journal.jsonl"))
        return index, entries, intact

    def info(self, name: str) -> dict:
        return read_manifest(self._require(name))

    def load_extra(self, name: str, extra: str) -> dict:
        return VectorIndex.load_extra(self._require(name), extra)

    def delete(self, name: str) -> None:
        """Delete ``name`` (under its writer lock; one atomic rename, then removal)."""
        p = self._require(name)
        delete_index(p)
