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
* One damaged index never hides the others: :meth:`entries` lists each with its problem: a
  manifest that cannot be read, a file it lists that is missing or of another size (checked
  cheaply, without reading the files), or an index folder whose manifest was deleted by hand
  (:meth:`unfinished`), which :meth:`delete` can remove.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._files import as_path
from .._io import name_lock
from ..errors import InputError, StoreError
from ..index import VectorIndex, read_manifest
from ..index._persist import _manifest_at, _readable_dir, check_meta, delete_index, read_consistent, writer_at_work

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# names Windows reserves for devices, with any extension ("con", "NUL.txt"): such a folder cannot be copied there
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_LEFTOVER = re.compile(r"^\.(.+)\.old-[0-9a-f]{8}$")
# the files a save or the service writes inside an index folder (see embedkit.index._persist)
_INDEX_FILES = frozenset({"manifest.json", "index.faiss", "ids.npy", "vectors.npy", "tombstones.npy", "keys.json",
                          "payload.npz", "journal.jsonl"})
_SAVED_ALWAYS = frozenset({"ids.npy", "vectors.npy", "tombstones.npy", "keys.json"})  # in every saved index
_EXTRA_FILE = re.compile(r"^extra\.[A-Za-z0-9_-]{1,64}\.npz$")
_WHERE = "pass the folder your indexes are in as Store(root) / --store DIR, or set EMBEDKIT_STORE"
_WRITABLE = "pass a writable folder as Store(root) / --store DIR, or set EMBEDKIT_STORE"


def default_root() -> Path:
    return Path(os.environ.get("EMBEDKIT_STORE") or "indexes")


def check_name(name) -> str:
    """Index names are one path component: letters, digits, '_', '-', '.'; no '..'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InputError(f"index name {name!r} is not allowed: use 1-128 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit")
    return name


def check_new_name(name) -> str:
    """:func:`check_name`, and refuse a name Windows reserves for a device (CON, PRN, AUX, NUL,
    COM1-9, LPT1-9, any case, with or without an extension): an index saved under it could not be
    copied to Windows. For names about to be created; existing indexes keep their names."""
    check_name(name)
    if _WINDOWS_RESERVED.fullmatch(name):
        raise InputError(f"index name {name!r} is a device name reserved on Windows (CON, PRN, AUX, NUL, COM1-9, "
                         "LPT1-9, with any extension), so the index could not be copied there; choose another name")
    return name


class Store:
    """A directory of saved indexes, one sub-directory per name."""

    def __init__(self, root=None):
        self.root = as_path(root, "Store root") if root is not None else default_root()

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

    def check_folder(self) -> None:
        """StoreError (one line) when the store path exists but is not a folder (a file given as --store)."""
        if self.root.is_symlink() and not self.root.exists():
            raise StoreError(f"the store path {self.root.absolute()} is a broken symbolic link (to "
                             f"{os.readlink(self.root)}); {_WHERE}")
        if self.root.exists() and not self.root.is_dir():  # (a broken link was said above)
            what = "a file" if self.root.is_file() else "not a folder"
            raise StoreError(f"the store path {self.root.resolve()} is {what}, not a folder of indexes; {_WHERE}")

    def check_writable(self) -> None:
        """Refuse, before any work is done, a store where no index could be saved: its path, or the
        nearest existing folder above a store folder still to be made, is a file, is on a read-only
        file system or is not writable. Creates nothing; StoreError (one line) naming the folder."""
        self.check_folder()
        problem = _write_problem(self.root)
        if problem:
            raise StoreError(f"{problem}; {_WRITABLE}")

    def _make_root(self) -> None:
        """Create the store folder (and the folders above it) for a save, with a one-line StoreError
        naming the store folder and the fix instead of a raw OSError."""
        if self.root.is_dir():
            return
        self.check_folder()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = f": {os.path.abspath(exc.filename)}" if exc.filename else ""
            problem = _write_problem(self.root) or (f"cannot create the store folder {self.root.resolve()} "
                                                    f"({exc.strerror or type(exc).__name__}{where})")
            raise StoreError(f"{problem}; nothing was saved; {_WRITABLE}") from None

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
        damaged: ``{"name", "damaged": bool, "error": one line or None, "manifest": dict or None}``,
        sorted by name. Checked here, cheaply: the manifest (schema, readable) and that every file it
        lists is there with the recorded size (:meth:`check`; loading also verifies the checksums).
        A folder of index files without a manifest (:meth:`unfinished`) is listed as damaged too."""
        out = []
        names = self.names()
        for name in names:
            try:
                out.append({"name": name, "damaged": False, "error": None, "manifest": self.check(name)})
            except StoreError as exc:
                if not self.exists(name):  # deleted since names(): not listed
                    continue
                error = getattr(exc, "reason", None) or str(exc)  # beside its name: the reason alone
                out.append({"name": name, "damaged": True, "error": " ".join(error.split()), "manifest": None})
        for name in self._unfinished_names(set(names)):
            out.append({"name": name, "damaged": True, "manifest": None,
                        "error": "no manifest.json (deleted by hand?): the folder holds index files but no "
                                 f"manifest; remove it with 'embedkit rm {name}' (Store.delete) and save the index again"})
        return sorted(out, key=lambda e: e["name"])

    def check(self, name: str) -> dict:
        """The manifest of ``name`` (as :meth:`info`) after a cheap check of the files it lists:
        each must exist with the size the manifest records (nothing is read; :meth:`load` also
        verifies the checksums). StoreError (one line) naming the first file at fault."""
        path = self._require(name)

        def read(d):
            manifest = _manifest_at(d)
            problem = _files_problem(d, manifest)
            if problem:
                reason = f"{problem}; restore it from a backup or rebuild it (train or build it again with --force)"
                exc = StoreError(f"index {name!r} in the store {self.root.resolve()} is damaged: {reason}")
                exc.reason = reason
                raise exc
            return manifest

        return read_consistent(path, read)

    def unfinished(self, name) -> bool:
        """Whether ``<root>/<name>`` is an index folder whose ``manifest.json`` is gone (deleted by hand:
        a save builds its folder under a temporary name and renames it whole, so a save never leaves one).
        Only a real folder (no link) inside the store counts, holding every file each save writes
        (:data:`_SAVED_ALWAYS`) and nothing but index files, and never while a save of ``name`` is at
        work: a folder of the user's own files is never taken for one. Such a folder is no index
        (:meth:`exists` is False), but :meth:`entries` lists it as damaged and :meth:`delete` removes it."""
        try:
            path = self.path(name)
            if path.is_symlink() or not path.is_dir() or (path / "manifest.json").exists():
                return False
            with os.scandir(path) as it:
                entries = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
            names = {n for n, _ in entries}
            if not _SAVED_ALWAYS <= names or not all(f and (n in _INDEX_FILES or _EXTRA_FILE.fullmatch(n))
                                                     for n, f in entries):
                return False
            return not writer_at_work(path)  # last: it lists the whole store folder
        except (InputError, OSError):
            return False

    def _unfinished_names(self, known: set) -> list[str]:
        try:
            listing = sorted(os.listdir(self.root)) if self.root.is_dir() else []
        except OSError:
            return []
        return [n for n in listing if n not in known and _NAME.fullmatch(n) and ".." not in n and self.unfinished(n)]

    def check_save_name(self, name: str) -> str:
        """The name check of :meth:`save`, for callers that run it before any work: a name not yet in the
        store may not be a device name Windows reserves (an index saved under one before may be replaced)."""
        name = check_name(name)
        if _WINDOWS_RESERVED.fullmatch(name) and not self.exists(name):  # only then does existence matter
            check_new_name(name)
        return name

    def save(self, name: str, index: VectorIndex, *, meta: dict | None = None, extras: dict | None = None,
             overwrite: bool = False, lock_timeout: float | None = 600.0) -> Path:
        """Write ``index`` as ``name`` atomically; refuses to replace unless ``overwrite``.

        Holds the writer lock of ``name`` throughout: a concurrent save of the same name waits
        (``overwrite=True``) or, once the first has written it, is refused (``overwrite=False``)."""
        p = self.path(name)
        _check_flag("overwrite", overwrite)
        self.check_save_name(name)
        check_meta(meta)
        if not isinstance(index, VectorIndex):
            from ..embeddings import Embeddings

            hint = " (use emb.to_index())" if isinstance(index, Embeddings) else ""
            raise InputError(f"index must be a VectorIndex; got {type(index).__name__}{hint}")
        _check_extras(extras)
        self._make_root()
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
        if self.root.exists() and not self.root.is_dir():
            return f"no index named {name!r}: the store path {root} is a file, not a folder ({_WHERE})"
        if not self.root.is_dir():
            return f"no index named {name!r}: the store folder {root} does not exist ({_WHERE})"
        if self.unfinished(name):
            return (f"index {name!r} in the store {root} is incomplete: its folder has no manifest.json (deleted by "
                    f"hand?); remove it with 'embedkit rm {name}' and save it again")
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

        _check_flag("mmap", mmap)
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
        """The arrays of extra ``extra`` of ``name`` (checksum-verified). StoreError (one line):
        when the manifest lists no such extra, or when it does and its file is missing or damaged
        (then saying so: restore the file or retrain)."""
        path = self._require(name)
        try:
            return VectorIndex.load_extra(path, extra)
        except StoreError as exc:
            raise self._extra_error(name, path, extra, exc) from None

    def _extra_error(self, name: str, path, extra: str, exc: StoreError) -> StoreError:
        try:
            manifest = read_manifest(path)
        except StoreError:
            return exc
        if extra not in (manifest.get("extras") or []):
            return exc  # no such extra: the index holds none
        fname = f"extra.{extra}.npz"
        state = _file_problem(_readable_dir(path) / fname, (manifest.get("files") or {}).get(fname)) \
            or f"is damaged ({' '.join(str(exc).split())})"
        return StoreError(f"index {name!r} in the store {self.root.resolve()}: its {extra} file {fname} {state}; "
                          f"restore it from a backup or retrain the index (train it again with --name {name} --force)")

    def delete(self, name: str) -> None:
        """Delete ``name`` (under its writer lock; one atomic rename, then removal), or the folder
        ``name`` of an index whose manifest was deleted (:meth:`unfinished`)."""
        check_name(name)
        if not self.root.is_dir():  # as load/info say; and the lock file would create the folder or fail
            raise StoreError(self.missing_message(name))
        with self.lock(name, what="delete"):  # a save of the same name cannot finish between the check and the delete
            if not self.exists(name) and self.unfinished(name):
                delete_index(self.path(name))
                return
        p = self._require(name)
        delete_index(p)


def _check_flag(what: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{what} must be True or False; got {value!r}")


def _check_extras(extras) -> None:
    """InputError (one line) for extras that could not be saved and read back: each extra is a dict
    of str -> numeric, bool or string arrays (an object array would save, then fail to load)."""
    if extras is None:
        return
    if not isinstance(extras, dict):
        raise InputError(f"extras must be a dict of name -> dict of arrays; got {type(extras).__name__}")
    for name, arrays in extras.items():
        if not isinstance(arrays, dict):
            raise InputError(f"extras[{name!r}] must be a dict of str -> arrays; got {type(arrays).__name__}")
        for key, value in arrays.items():
            where = f"extras[{name!r}][{key!r}]"
            if not isinstance(key, str):
                raise InputError(f"{where}: array names must be strings; got {type(key).__name__}")
            try:
                dtype = np.asarray(value).dtype
            except Exception as exc:  # ragged lists and the like
                raise InputError(f"{where} cannot be made an array ({type(exc).__name__}); extras hold numeric "
                                 "or string arrays") from None
            if dtype.hasobject:  # (structured arrays of plain fields save and load without pickle: kept)
                raise InputError(f"{where} is an array of Python objects (dtype {dtype}); extras hold numeric or "
                                 "string arrays")


def _files_problem(path: Path, manifest: dict) -> str | None:
    """What is wrong with the files ``manifest`` lists in ``path`` (missing, or not the recorded
    size), from their directory entries alone; None when nothing is."""
    for fname, info in (manifest.get("files") or {}).items():
        problem = _file_problem(path / fname, info)
        if problem:
            return f"{fname} {problem}"
    return None


def _file_problem(file: Path, info) -> str | None:
    """What is wrong with one listed file (``info``: its manifest entry), said after its name; None: nothing."""
    try:
        size = os.stat(file).st_size
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    want = info.get("bytes") if isinstance(info, dict) else None
    if isinstance(want, int) and size != want:
        return f"is truncated or altered ({size} bytes, the manifest says {want})"
    return None


def _write_problem(root: Path) -> str | None:
    """Why no index could be saved under store folder ``root`` (None: nothing found). Looks at
    ``root`` or, when it is still to be made, at the nearest existing folder above it; creates nothing."""
    root = Path(os.path.abspath(root))
    folder = root
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    doing = f"cannot save into the store folder {root}" if folder == root else f"cannot create the store folder {root}"
    if not folder.is_dir():
        return f"{doing}: {folder} is a file, not a folder"
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{doing}: {folder} is on a read-only file system"
    except (OSError, AttributeError):
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{doing}: no permission to write in {folder}"
    return None
