"""On-disk format of a saved VectorIndex (one directory), written atomically.

    <dir>/manifest.json      format, version, metric, kind, dim, count, knobs, meta, checksums
    <dir>/index.faiss        the FAISS index (faiss.write_index); absent before the first add
    <dir>/ids.npy            int64 FAISS ids of the live items, in key order
    <dir>/keys.json          the live keys (JSON list of strings), aligned with ids.npy
    <dir>/vectors.npy        float32 (count, dim) vectors as given, aligned with ids.npy
    <dir>/tombstones.npy     int64 ids deleted but still inside FAISS (HNSW)
    <dir>/payload.npz        optional per-item payload columns (named arrays aligned with ids.npy)
    <dir>/extra.<name>.npz   optional named arrays (user vectors, model weights...), no pickle

What is promised:

* **Writers exclude each other.** Every save (and :meth:`Store.delete`, and the service's
  compaction) holds the exclusive advisory lock ``<parent>/.<name>.lock`` (``fcntl.flock``,
  across processes on one machine). Two saves of one name run one after the other; a save
  that cannot get the lock within its wait raises a one-line StoreError and changes nothing.
* **A save is atomic.** Everything is written into ``.<name>.tmp-<8 hex>``, each file and the
  directory fsynced, then swapped in: the previous copy is renamed to ``.<name>.old-<8 hex>``,
  the new one renamed in, the aside copy deleted. A crash at any point leaves the previous
  copy or the new one, complete. A failed save (disk full...) raises StoreError and leaves
  the previous copy as it was.
* **Recovery is done by writers only, and only on exact names.** The next save of ``<name>``
  (under the lock) puts back an aside copy if a crash left no ``<name>``, and deletes the
  leftovers ``.<name>.old-<8 hex>``, ``.<name>.tmp-<8 hex>`` and ``.<name>.del-<8 hex>`` of
  killed writers; a directory that merely starts with that text (an index named
  ``<name>.old-v1``) is never touched. No live writer can be using them: it would hold the lock.
* **Readers never change anything and never see a half-written copy.** Reading (manifest,
  load, extras) reads ``<name>``, or, in the instant between the two renames of a save or
  after a crash there, the aside copy, without renaming anything. A read that fails while the
  directory was swapped under it is retried, so a reader racing a save sees the old or the new
  copy, never "damaged" or "no index".
* **Nothing is trusted without checking.** The manifest is validated against its schema
  (types of every field, the checksum list naming exactly the files the index needs, known
  knobs), every file is checked against its size and SHA-256, and the FAISS index against the
  manifest (dimension, metric, number of vectors vs live ids + tombstones) before any search.
  Damage raises a one-line StoreError saying what is wrong. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from .._io import fsync_dir as _fsync_dir
from .._io import fsync_file as _fsync_file
from .._io import name_lock, wait_for_writer
from .._version import __version__
from ..errors import InputError, StoreError

FORMAT = "embedkit.index"
FORMAT_VERSION = 1
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ASIDE = ".old-"
_TMP = ".tmp-"
_DEL = ".del-"
_REQUIRED = ("ids.npy", "vectors.npy", "tombstones.npy", "keys.json")
_METRICS = ("cosine", "ip", "l2")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
READ_ATTEMPTS = 6
# np.load parses .npy headers with ast.literal_eval, which CPython 3.11 cannot run in two threads
# at once ("SystemError: AST constructor recursion depth mismatch"): loads take turns
_NPY_LOCK = threading.Lock()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _leftovers(path: Path, marker: str) -> list[Path]:
    """Exactly the ``.<name><marker><8 hex>`` siblings a writer of ``path`` creates."""
    if not path.parent.is_dir():
        return []
    pat = re.compile(re.escape(f".{path.name}{marker}") + r"[0-9a-f]{8}")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return sorted(path.parent / n for n in names if pat.fullmatch(n))


def _aside_copies(path: Path) -> list[Path]:
    return _leftovers(path, _ASIDE)


def _new_name(path: Path, marker: str) -> Path:
    return path.parent / f".{path.name}{marker}{uuid.uuid4().hex[:8]}"


def recover(path) -> None:
    """Finish or undo a save of directory ``path`` that a crash interrupted (a writer's job).

    Takes the writer lock of ``path``. If ``path`` is missing but the previous copy was renamed
    aside, that copy is put back; then the leftovers of killed writers (``.<name>.old-<8 hex>``,
    ``.<name>.tmp-<8 hex>``, ``.<name>.del-<8 hex>``, exactly those names) are deleted. Every
    save runs it first; readers never do (they read the aside copy in place). Public as
    :func:`embedkit.index.recover`.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return
    with name_lock(path, what="recovery"):
        asides = [p for p in _aside_copies(path) if (p / "manifest.json").exists()]
        if asides and not path.exists():
            newest = max(asides, key=lambda p: p.stat().st_mtime)
            os.replace(newest, path)
            _fsync_dir(path.parent)
        for marker in (_ASIDE, _TMP, _DEL):
            for p in _leftovers(path, marker):
                shutil.rmtree(p, ignore_errors=True)


def writer_at_work(path: Path) -> bool:
    """Whether a save of ``path`` is under way (its temporary or aside copy exists)."""
    return bool(_aside_copies(path) or _leftovers(path, _TMP))


def _readable_dir(path: Path) -> Path:
    """The copy a reader reads: ``path`` itself, or the newest complete aside copy when a save is
    between its two renames (or crashed there). Renames nothing. While a writer of ``path`` is
    swapping copies (its temporary or aside copy exists), a look that finds neither copy is
    repeated a few times instead of reporting the index missing."""
    delay = 0.001
    for _ in range(8):
        if (path / "manifest.json").exists():
            return path
        asides = []
        for p in _aside_copies(path):
            try:
                asides.append(((p / "manifest.json").stat().st_mtime_ns, p))
            except OSError:
                continue
        if asides:
            return max(asides)[1]
        if not writer_at_work(path):
            break  # no writer at work: the index is really not there
        if not wait_for_writer(path):  # a writer is swapping copies: wait for it to finish
            time.sleep(delay)
            delay *= 2
    return path


def _ident(path: Path):
    """What changes when a save swaps ``path``: the directory's and its manifest's identity."""
    try:
        d = os.stat(path)
        m = os.stat(path / "manifest.json")
    except OSError:
        return None
    return (d.st_ino, m.st_ino, m.st_mtime_ns, m.st_size)


def read_consistent(path, fn):
    """``fn(directory)`` on the copy a reader should read, retried when a save swapped the
    directory during the read (or was between its two renames). Errors of an index that did not
    change under the read are raised at once."""
    path = Path(path)
    delay = 0.005
    for attempt in range(READ_ATTEMPTS):
        before = _ident(path)
        try:
            result = fn(_readable_dir(path))
        except (StoreError, OSError, ValueError) as exc:
            after = _ident(path)
            if attempt + 1 < READ_ATTEMPTS and (before != after or (before is None and _aside_copies(path))):
                time.sleep(delay)
                delay *= 2
                continue
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); restore or rebuild it") from None
        if before is not None and _ident(path) != before and attempt + 1 < READ_ATTEMPTS:
            continue  # swapped while we read: the parts may come from two copies, read again
        return result
    raise StoreError(f"{path}: kept changing while being read; try again")  # pragma: no cover


def check_meta(meta) -> None:
    """InputError (one line) for a manifest ``meta`` that JSON cannot hold: an unserialisable value,
    or a NaN / infinity (Python would write the invalid JSON token ``NaN``), named by its key."""
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise InputError(f"meta must be JSON-serialisable: {exc}") from None
    found = _non_finite(meta, "meta")
    if found:
        where, value = found
        raise InputError(f"{where} is {value}, which JSON cannot hold; give a finite number or None "
                         "(nothing was saved)")


def _non_finite(value, where: str):
    """(where, value) of the first NaN or infinite float inside ``value`` (dicts, lists), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, v in items:
        found = _non_finite(v, f"{where}[{key!r}]")
        if found:
            return found
    return None


def _finite(value):
    """``value`` with NaN and infinite floats made None: the meta of an index saved before
    :func:`check_meta` refused them, so that saving the loaded index again (compaction, tune) works."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def meta_losses(meta: dict) -> list[float]:
    """The ``loss_history`` a trainer wrote into a manifest's meta, as floats (JSON holds a NaN loss as None)."""
    return [float("nan") if x is None else float(x) for x in meta.get("loss_history") or []]


def save_index(state, path, *, meta: dict, extras=None, lock_timeout: float | None = 600.0) -> None:
    """Write ``state`` (a :class:`~embedkit.index._storage.State`) and ``meta`` to directory ``path``
    under the writer lock (see the module doc); on any failure the previous copy is unchanged."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is not a directory; choose another path")
    extras = dict(extras or {})
    for name, arrays in extras.items():
        if not isinstance(name, str) or not _EXTRA_NAME.match(name):
            raise InputError(f"extra name {name!r} must match [A-Za-z0-9_-]{{1,64}}")
        if not isinstance(arrays, dict) or not arrays:
            raise InputError(f"extra {name!r} must be a non-empty dict of numpy arrays")
    check_meta(meta)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent} ({exc.strerror}); nothing was saved") from None
    with name_lock(path, timeout=lock_timeout):
        try:
            recover(path)
            _write_and_swap(state, path, meta, extras)
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot save {path} ({exc.strerror or exc}); the previous copy, if any, is unchanged") from None


def _write_and_swap(state, path: Path, meta: dict, extras: dict) -> None:
    import faiss

    tmp = _new_name(path, _TMP)
    tmp.mkdir()
    try:
        files = {}
        if state.faiss is not None:
            try:
                faiss.write_index(state.faiss, str(tmp / "index.faiss"))
            except RuntimeError as exc:
                raise OSError(str(exc).strip().splitlines()[-1]) from None
            files["index.faiss"] = None
        np.save(tmp / "ids.npy", state.ids)
        np.save(tmp / "vectors.npy", state.vectors)
        np.save(tmp / "tombstones.npy", state.tombstones)
        (tmp / "keys.json").write_text(json.dumps(list(state.keys), ensure_ascii=False), encoding="utf-8")
        files.update({"ids.npy": None, "vectors.npy": None, "tombstones.npy": None, "keys.json": None})
        if state.payload:
            with open(tmp / "payload.npz", "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in state.payload.items()})
            files["payload.npz"] = None
        for name, arrays in extras.items():
            fname = f"extra.{name}.npz"
            with open(tmp / fname, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
            files[fname] = None
        for fname in files:
            _fsync_file(tmp / fname)
            files[fname] = {"sha256": _sha256(tmp / fname), "bytes": (tmp / fname).stat().st_size}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "embedkit_version": __version__,
            "generation": uuid.uuid4().hex,
            "metric": state.metric,
            "kind": state.kind,
            "factory": state.factory,
            "dim": int(state.dim),
            "count": len(state.ids),
            "next_id": int(state.next_id),
            "knobs": state.knobs,
            "rebuild_fraction": float(state.rebuild_fraction),
            "meta": meta,
            "extras": sorted(extras),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": files,
        }
        with open(tmp / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if path.exists():
            aside = _new_name(path, _ASIDE)
            os.replace(path, aside)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(aside, path)  # put the previous copy back
                raise
            _fsync_dir(path.parent)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def delete_index(path, lock_timeout: float | None = 600.0) -> None:
    """Delete saved directory ``path`` under the writer lock: renamed to ``.<name>.del-<8 hex>``
    first (one atomic step), then removed, so a crash never leaves a half-deleted index."""
    path = Path(path)
    with name_lock(path, timeout=lock_timeout, what="delete"):
        recover(path)
        if not path.exists():
            raise StoreError(f"{path}: no saved index here")
        gone = _new_name(path, _DEL)
        os.replace(path, gone)
        _fsync_dir(path.parent)
        shutil.rmtree(gone, ignore_errors=True)


# ---------------------------------------------------------------------- the manifest schema
def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_manifest(manifest, mpath) -> dict:
    """Validate a parsed manifest against the schema; returns it or raises a one-line StoreError."""
    from ._factory import DEFAULT_KNOBS

    def bad(what: str):
        raise StoreError(f"{mpath}: {what}; the index is damaged (restore it from a backup or rebuild it)")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(f"{mpath}: not an embedkit index manifest")
    version = manifest.get("format_version")
    if not _is_int(version) or version < 1:
        bad(f"format_version is {version!r}, expected a whole number >= 1")
    if version > FORMAT_VERSION:
        raise StoreError(f"{mpath}: written in format version {version} by embedkit "
                         f"{manifest.get('embedkit_version')}; this embedkit reads up to version {FORMAT_VERSION}: "
                         "upgrade embedkit")
    for field, default in (("meta", {}), ("knobs", {}), ("extras", [])):  # absent in early manifests
        manifest.setdefault(field, default)
    for field, kinds, label in (("metric", str, "a string"), ("kind", str, "a string"), ("meta", dict, "an object"),
                                ("files", dict, "an object"), ("knobs", dict, "an object"),
                                ("extras", list, "a list")):
        if not isinstance(manifest.get(field), kinds):
            bad(f"field {field!r} is {type(manifest.get(field)).__name__}, expected {label}")
    if manifest["metric"] not in _METRICS:
        bad(f"metric {manifest['metric']!r} is not one of {', '.join(_METRICS)}")
    if not manifest["kind"]:
        bad("field 'kind' is empty")
    for field in ("factory", "embedkit_version", "created", "generation"):
        if manifest.get(field) is not None and not isinstance(manifest[field], str):
            bad(f"field {field!r} is {type(manifest[field]).__name__}, expected a string")
    dim, count, next_id = manifest.get("dim"), manifest.get("count"), manifest.get("next_id", manifest.get("count"))
    if not _is_int(dim) or not 1 <= dim <= 65536:
        bad(f"dim is {dim!r}, expected a whole number in [1, 65536]")
    if not _is_int(count) or count < 0:
        bad(f"count is {count!r}, expected a whole number >= 0")
    if not _is_int(next_id) or next_id < count:
        bad(f"next_id is {next_id!r}, expected a whole number >= count ({count})")
    rf = manifest.get("rebuild_fraction", 0.3)
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not (0 < rf <= 1) or not math.isfinite(rf):
        bad(f"rebuild_fraction is {rf!r}, expected a number in (0, 1]")
    for name, value in manifest["knobs"].items():
        if name not in DEFAULT_KNOBS:
            bad(f"unknown knob {name!r} (known: {', '.join(DEFAULT_KNOBS)})")
        if value is not None and (not _is_int(value) or value < 1):
            bad(f"knob {name!r} is {value!r}, expected a whole number >= 1 or null")
    for x in manifest["extras"]:
        if not isinstance(x, str) or not _EXTRA_NAME.match(x):
            bad(f"extra name {x!r} is not allowed")
    files = manifest["files"]
    want = set(_REQUIRED) | {f"extra.{x}.npz" for x in manifest["extras"]}
    optional = {"index.faiss", "payload.npz"}
    missing = sorted(want - set(files))
    if missing:
        bad(f"the checksum list does not name {', '.join(missing)}")
    unknown = sorted(set(files) - want - optional)
    if unknown:
        bad(f"the checksum list names unexpected files {', '.join(unknown)}")
    if "index.faiss" not in files and count:
        bad(f"count is {count} but the checksum list names no index.faiss")
    for fname, info in files.items():
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and _HEX64.match(info["sha256"])
                and _is_int(info.get("bytes")) and info["bytes"] >= 0):
            bad(f"the checksum entry of {fname} is not {{'sha256': <64 hex>, 'bytes': <int>}}")
    return manifest


def _manifest_at(path: Path) -> dict:
    mpath = path / "manifest.json"
    if not path.is_dir():
        raise StoreError(f"{path}: no saved index here (not a directory)")
    if not mpath.exists():
        raise StoreError(f"{mpath}: missing; {path} is not a saved index or its save never finished")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise StoreError(f"{mpath}: damaged manifest ({exc}); restore the index from a backup or rebuild it") from None
    manifest = check_manifest(manifest, mpath)
    if isinstance(manifest.get("meta"), dict):  # NaN written before check_meta: every reader gets None
        manifest["meta"] = _finite(manifest["meta"])
    return manifest


def read_manifest(path) -> dict:
    """The manifest (a dict) of the index saved in directory ``path``, validated (see the module doc).

    Read-only: renames nothing; while a save swaps the directory it reads the old or the new copy.
    Raises StoreError (one line) when ``path`` is not a saved index, the manifest is missing,
    damaged or fails the schema, or it was written by a newer embedkit. Public as
    :func:`embedkit.index.read_manifest` and :meth:`VectorIndex.read_manifest`.
    """
    return read_consistent(Path(path), _manifest_at)


def _verify(path: Path, manifest: dict, names) -> None:
    files = manifest["files"]
    for fname in names:
        info = files.get(fname)
        fpath = path / fname
        if info is None:
            raise StoreError(f"{fpath}: not listed in the manifest; the index is damaged")
        if not fpath.exists():
            raise StoreError(f"{fpath}: missing; the index is damaged (restore or rebuild it)")
        size = fpath.stat().st_size
        if size != info["bytes"]:
            raise StoreError(f"{fpath}: truncated or altered ({size} bytes, manifest says {info['bytes']}); "
                             "restore or rebuild the index")
        if _sha256(fpath) != info["sha256"]:
            raise StoreError(f"{fpath}: checksum mismatch, the file is damaged; restore or rebuild the index")


def load_index(cls, path, *, mmap=False, verify=True):
    """Read directory ``path`` into a new ``cls`` (VectorIndex) through ``cls._from_state``."""
    return read_consistent(Path(path), lambda p: _load_at(cls, p, mmap, verify))


def _check_arrays(path: Path, manifest: dict, ids, vectors, tombstones, keys) -> None:
    dim, count, next_id = manifest["dim"], manifest["count"], manifest.get("next_id", manifest["count"])

    def bad(what):
        raise StoreError(f"{path}: {what}; the index is damaged (restore or rebuild it)")

    if ids.ndim != 1 or ids.dtype.kind not in "iu" or tombstones.ndim != 1 or tombstones.dtype.kind not in "iu":
        bad("ids.npy or tombstones.npy is not a 1-D integer array")
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        bad(f"vectors.npy holds {vectors.dtype} of shape {vectors.shape}, expected float32 (count, dim)")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        bad("keys.json is not a list of strings")
    if not (len(ids) == len(keys) == len(vectors) == count) or (len(vectors) and vectors.shape[1] != dim):
        bad("ids, keys and vectors disagree in length or dimension")
    if len(set(keys)) != len(keys):
        bad("keys.json holds duplicate keys")
    for what, arr in (("ids", ids), ("tombstones", tombstones)):
        if len(arr) and (arr.min() < 0 or arr.max() >= next_id):
            bad(f"{what} outside [0, next_id={next_id})")
    if len(np.unique(ids)) != len(ids) or (len(tombstones) and np.intersect1d(ids, tombstones).size):
        bad("ids repeat or are also tombstones")


def _check_faiss(path: Path, manifest: dict, findex, ids, tombstones) -> None:
    import faiss

    from . import _factory as F

    fpath = path / "index.faiss"
    if findex.d != manifest["dim"]:
        raise StoreError(f"{fpath}: FAISS index of dimension {findex.d} but the manifest says dim={manifest['dim']}; "
                         "the index is damaged (restore or rebuild it)")
    want_metric = faiss.METRIC_L2 if manifest["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    if findex.metric_type != want_metric:
        raise StoreError(f"{fpath}: FAISS metric {findex.metric_type} does not match the manifest's "
                         f"{manifest['metric']!r}; the index is damaged (restore or rebuild it)")
    expected = len(ids) + len(tombstones)
    if findex.ntotal != expected:
        raise StoreError(f"{fpath}: FAISS holds {findex.ntotal} vectors but the manifest lists {len(ids)} live "
                         f"ids and {len(tombstones)} tombstones; the index is damaged (restore or rebuild it)")
    if not F.takes_ids(findex) and len(ids) and int(ids.max()) >= findex.ntotal:
        raise StoreError(f"{fpath}: ids beyond the {findex.ntotal} vectors FAISS holds; the index is damaged")


def _load_at(cls, path: Path, mmap: bool, verify: bool):
    import faiss

    from . import _factory as F
    from ._storage import State

    manifest = _manifest_at(path)
    files = manifest["files"]
    if verify:
        _verify(path, manifest, [f for f in files if not f.startswith("extra.")])
    dim = manifest["dim"]
    knobs = dict(F.DEFAULT_KNOBS)
    knobs.update(manifest["knobs"])
    try:
        with _NPY_LOCK:
            ids = np.load(path / "ids.npy", allow_pickle=False)
            vectors = np.load(path / "vectors.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
            tombstones = np.load(path / "tombstones.npy", allow_pickle=False)
            payload = None
            if "payload.npz" in files:
                with np.load(path / "payload.npz", allow_pickle=False) as data:
                    payload = {k: data[k] for k in data.files}
        keys = json.loads((path / "keys.json").read_text(encoding="utf-8"))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: cannot read the index files ({exc}); restore or rebuild it") from None
    _check_arrays(path, manifest, ids, vectors, tombstones, keys)
    if payload is not None:
        for col, arr in payload.items():
            if arr.ndim < 1 or len(arr) != len(ids):
                raise StoreError(f"{path / 'payload.npz'}: column {col!r} has {len(arr) if arr.ndim else 0} rows "
                                 f"for {len(ids)} items; the index is damaged (restore or rebuild it)")
    findex = None
    if "index.faiss" in files:
        if mmap:  # not every FAISS type can be memory-mapped (IVF cannot): read those normally
            try:
                findex = faiss.read_index(str(path / "index.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
                if F.find_ivf(findex) is not None:  # on-disk IVF lists cannot be copied later
                    findex, mmap = None, False
            except RuntimeError:
                findex, mmap = None, False
        try:
            if findex is None:
                findex = faiss.read_index(str(path / "index.faiss"))
        except RuntimeError as exc:
            raise StoreError(f"{path / 'index.faiss'}: cannot be read by FAISS ({str(exc).strip().splitlines()[-1]})") from None
        _check_faiss(path, manifest, findex, ids, tombstones)
    elif len(tombstones):
        raise StoreError(f"{path}: tombstones without a FAISS index; the index is damaged (restore or rebuild it)")
    state = State(dim=dim, metric=manifest["metric"], kind=manifest["kind"], factory=manifest.get("factory"),
                  knobs=knobs, rebuild_fraction=manifest.get("rebuild_fraction", 0.3),
                  next_id=int(manifest.get("next_id", len(ids))), ids=ids, keys=keys, vectors=vectors,
                  tombstones=tombstones, faiss=findex, mmapped=bool(mmap) and findex is not None,
                  payload=payload)
    try:
        return cls._from_state(state, dict(manifest.get("meta") or {}))  # _manifest_at made its NaNs None
    except (InputError, ValueError, TypeError) as exc:
        raise StoreError(f"{path / 'manifest.json'}: does not describe a valid index ({exc}); "
                         "restore or rebuild it") from None


def load_extra(path, name: str) -> dict:
    return read_consistent(Path(path), lambda p: _load_extra_at(p, name))


def _load_extra_at(path: Path, name: str) -> dict:
    manifest = _manifest_at(path)
    fname = f"extra.{name}.npz"
    if name not in manifest["extras"]:
        have = ", ".join(manifest["extras"]) or "none"
        raise StoreError(f"{path}: has no extra {name!r} (extras: {have})")
    _verify(path, manifest, [fname])
    try:
        with _NPY_LOCK, np.load(path / fname, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise StoreError(f"{path / fname}: cannot be read ({exc})") from None
