"""On-disk format of a saved VectorIndex (one directory), written atomically.

    <dir>/manifest.json      format, version, metric, kind, dim, count, knobs, meta, checksums
    <dir>/index.faiss        the FAISS index (faiss.write_index)
    <dir>/ids.npy            int64 FAISS ids of the live items, in key order
    <dir>/keys.json          the live keys (JSON list of strings), aligned with ids.npy
    <dir>/vectors.npy        float32 (count, dim) vectors as given, aligned with ids.npy
    <dir>/tombstones.npy     int64 ids deleted but still inside FAISS (HNSW)
    <dir>/payload.npz        optional per-item payload columns (named arrays aligned with ids.npy)
    <dir>/extra.<name>.npz   optional named arrays (user vectors, model weights...), no pickle

Saving writes everything into a temporary sibling directory, fsyncs each file and the
directory, then swaps it into place: the previous copy is renamed aside, the new one renamed
in, and the aside copy deleted. If a crash leaves only the aside copy, loading renames it
back, so a crash never loses the previous state. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from .._io import fsync_dir as _fsync_dir
from .._io import fsync_file as _fsync_file
from .._version import __version__
from ..errors import InputError, StoreError

FORMAT = "embedkit.index"
FORMAT_VERSION = 1
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ASIDE = ".old-"
_TMP = ".tmp-"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _aside_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}{_ASIDE}*")) if path.parent.exists() else []


def recover(path) -> None:
    """Finish or undo a save of directory ``path`` interrupted between its two renames.

    If ``path`` is missing but the previous copy was renamed aside, that copy is put back;
    leftover aside copies are deleted. Does nothing when no save was interrupted. Public as
    :func:`embedkit.index.recover`; :func:`read_manifest` and loading call it first.
    """
    path = Path(path)
    asides = _aside_copies(path)
    if not asides:
        return
    if not path.exists():
        newest = max(asides, key=lambda p: p.stat().st_mtime)
        os.replace(newest, path)
        asides.remove(newest)
    for p in asides:
        shutil.rmtree(p, ignore_errors=True)


def save_index(state, path, *, meta: dict, extras=None) -> None:
    """Write ``state`` (a :class:`~embedkit.index._storage.State`) and ``meta`` to directory ``path``."""
    import faiss

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is not a directory; choose another path")
    extras = dict(extras or {})
    for name, arrays in extras.items():
        if not isinstance(name, str) or not _EXTRA_NAME.match(name):
            raise InputError(f"extra name {name!r} must match [A-Za-z0-9_-]{{1,64}}")
        if not isinstance(arrays, dict) or not arrays:
            raise InputError(f"extra {name!r} must be a non-empty dict of numpy arrays")
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise InputError(f"meta must be JSON-serialisable: {exc}") from None

    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = path.parent / f".{path.name}{_TMP}{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        if state.faiss is not None:
            faiss.write_index(state.faiss, str(tmp / "index.faiss"))
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
            "metric": state.metric,
            "kind": state.kind,
            "factory": state.factory,
            "dim": state.dim,
            "count": len(state.ids),
            "next_id": int(state.next_id),
            "knobs": state.knobs,
            "rebuild_fraction": state.rebuild_fraction,
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
            aside = path.parent / f".{path.name}{_ASIDE}{uuid.uuid4().hex[:8]}"
            os.replace(path, aside)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path) -> dict:
    """The manifest (a dict) of the index saved in directory ``path``, after :func:`recover`.

    Raises StoreError (one line) when ``path`` is not a saved index, the manifest is missing or
    damaged, or it was written by a newer embedkit. Public as :func:`embedkit.index.read_manifest`
    and :meth:`VectorIndex.read_manifest`.
    """
    path = Path(path)
    recover(path)
    mpath = path / "manifest.json"
    if not path.is_dir():
        raise StoreError(f"{path}: no saved index here (not a directory)")
    if not mpath.exists():
        raise StoreError(f"{mpath}: missing; {path} is not a saved index or its save never finished")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{mpath}: damaged manifest ({exc}); restore the index from a backup or rebuild it") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(f"{mpath}: not an embedkit index manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreError(f"{mpath}: written in format version {version} by embedkit "
                         f"{manifest.get('embedkit_version')}; this embedkit reads up to version {FORMAT_VERSION}: "
                         "upgrade embedkit")
    return manifest


def _verify(path: Path, manifest: dict, names) -> None:
    files = manifest.get("files", {})
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
    import faiss

    from . import _factory as F
    from ._storage import State

    path = Path(path)
    manifest = read_manifest(path)
    files = manifest.get("files", {})
    if verify:
        _verify(path, manifest, [f for f in files if not f.startswith("extra.")])
    dim = int(manifest["dim"])
    knobs = dict(F.DEFAULT_KNOBS)
    knobs.update(manifest.get("knobs", {}))
    try:
        ids = np.load(path / "ids.npy", allow_pickle=False)
        vectors = np.load(path / "vectors.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
        tombstones = np.load(path / "tombstones.npy", allow_pickle=False)
        keys = json.loads((path / "keys.json").read_text(encoding="utf-8"))
        payload = None
        if "payload.npz" in files:
            with np.load(path / "payload.npz", allow_pickle=False) as data:
                payload = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise StoreError(f"{path}: cannot read the index files ({exc}); restore or rebuild it") from None
    if not (len(ids) == len(keys) == len(vectors) == manifest["count"]) or (len(vectors) and vectors.shape[1] != dim):
        raise StoreError(f"{path}: ids, keys and vectors disagree in length or dimension; the index is damaged")
    if len(set(keys)) != len(keys):
        raise StoreError(f"{path / 'keys.json'}: duplicate keys; the index is damaged")
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
    state = State(dim=dim, metric=manifest["metric"], kind=manifest["kind"], factory=manifest.get("factory"),
                  knobs=knobs, rebuild_fraction=manifest.get("rebuild_fraction", 0.3),
                  next_id=int(manifest.get("next_id", len(ids))), ids=ids, keys=keys, vectors=vectors,
                  tombstones=tombstones, faiss=findex, mmapped=bool(mmap) and findex is not None,
                  payload=payload)
    return cls._from_state(state, dict(manifest.get("meta") or {}))


def load_extra(path, name: str) -> dict:
    path = Path(path)
    manifest = read_manifest(path)
    fname = f"extra.{name}.npz"
    if name not in manifest.get("extras", []):
        have = ", ".join(manifest.get("extras", [])) or "none"
        raise StoreError(f"{path}: has no extra {name!r} (extras: {have})")
    _verify(path, manifest, [fname])
    try:
        with np.load(path / fname, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise StoreError(f"{path / fname}: cannot be read ({exc})") from None
