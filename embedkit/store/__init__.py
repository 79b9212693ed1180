"""The store: named, saved indexes under one directory (``indexes/<name>/`` by default).

The root is, in order: the ``root`` argument (``--store`` on the command line), the
``EMBEDKIT_STORE`` environment variable, or ``./indexes``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import InputError, StoreError
from ..index import VectorIndex, read_manifest, recover

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


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

    def exists(self, name: str) -> bool:
        p = self.path(name)
        recover(p)
        return (p / "manifest.json").exists()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir() and (p / "manifest.json").exists():
                out.append(p.name)
        return out

    def save(self, name: str, index: VectorIndex, *, meta: dict | None = None, extras: dict | None = None,
             overwrite: bool = False) -> Path:
        """Write ``index`` as ``name`` atomically; refuses to replace unless ``overwrite``."""
        p = self.path(name)
        if not overwrite and self.exists(name):
            raise InputError(f"an index named {name!r} already exists in {self.root}; pass overwrite=True to replace it")
        index.save(p, meta=meta, extras=extras)
        return p

    def _require(self, name: str) -> Path:
        p = self.path(name)
        if not self.exists(name):
            have = ", ".join(self.names()) or "none"
            raise StoreError(f"no index named {name!r} in {self.root} (indexes: {have})")
        return p

    def load(self, name: str, mmap: bool = False) -> VectorIndex:
        """Load ``name``, with any writes the HTTP service journalled since its last full save."""
        return self.load_journalled(name, mmap=mmap)[0]

    def load_journalled(self, name: str, mmap: bool = False) -> tuple[VectorIndex, list[dict], int]:
        """:meth:`load`, and the journal it replayed: (index, journal entries, byte length of the
        journal's intact part), what the HTTP service needs to go on appending to that journal."""
        from .journal import read_journal, replay

        path = self._require(name)
        index = VectorIndex.load(path, mmap=mmap)
        entries, intact = read_journal(path)
        if entries:
            replay(index, entries)
        return index, entries, intact

    def info(self, name: str) -> dict:
        return read_manifest(self._require(name))

    def load_extra(self, name: str, extra: str) -> dict:
        return VectorIndex.load_extra(self._require(name), extra)

    def delete(self, name: str) -> None:
        shutil.rmtree(self._require(name))
