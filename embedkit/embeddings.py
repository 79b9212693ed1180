"""Embeddings: the one result type every trainer returns (string keys + float32 vectors)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._arrays import as_keys, as_vectors
from ._files import BOM, ICONV, NPY_MAGIC, ZIP_MAGIC, as_path, looks_like_text, numpy_kind, numpy_problem
from ._io import atomic_write_bytes
from ._knn import knn_search, unit_rows
from ._validation import shown
from .errors import InputError, MissingKeyError, ParseError, StoreError

__all__ = ["Embeddings"]

_FORMAT = "embedkit.embeddings/1"
_SUGGEST_LIMIT = 3_000  # difflib over more keys than this is too slow for an error message (~0.1 s a 1,000)


def close_matches(word: str, candidates, n: int = 3) -> list[str]:
    """Up to ``n`` candidates close to ``word``: the same text up to case and surrounding spaces
    first, then difflib's (as Python's own "did you mean") among the candidates within 2
    characters of its length; when more than 3,000 of those remain, among those sharing its
    first 1, 2, ... characters (a typo past the start is found in a large vocabulary too)."""
    if not isinstance(word, str):
        return []
    size, folded = len(word), word.strip().casefold()
    near = [c for c in candidates if isinstance(c, str) and abs(len(c) - size) <= 2]
    same = [c for c in near if c != word and c.strip().casefold() == folded][:n]
    prefix = 0
    while len(near) > _SUGGEST_LIMIT and prefix < size:
        prefix += 1
        start = folded[:prefix]
        near = [c for c in near if c.casefold().startswith(start)]
    from difflib import get_close_matches

    return (same + [c for c in get_close_matches(word, near, n=n) if c not in same])[:n]


class _MissingKeyText:
    """The message of a missing key, worked out when it is read: the "did you mean" search
    costs nothing for code that catches the KeyError (a gensim-style loop over unknown words)."""

    __slots__ = ("key", "where", "count", "candidates", "prefix")

    def __init__(self, key, where: str, count: int, candidates, prefix: str = ""):
        self.key, self.where, self.count, self.candidates, self.prefix = key, where, count, candidates, prefix

    def __str__(self) -> str:
        return (self.prefix + ": " if self.prefix else "") + self._text()

    def _keys(self) -> list:
        try:
            return self.candidates()
        except Exception:  # a suggestion never turns into another error
            return []

    def _text(self) -> str:
        key = self.key
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            text = str(key)
            if text in self._keys():
                return f"key {text} is an int but keys are strings: use {text!r}"
            return f"key {text} is an int but keys are strings (and {text!r} is not in {self.where} either)"
        if isinstance(key, bytes):
            return f"key {key!r} is bytes but keys are strings: pass key.decode()"
        if not isinstance(key, str):
            return f"key {key!r} is a {type(key).__name__} but keys are strings: pass str(key)"
        close = close_matches(key, self._keys())
        hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
        return f"key {key!r} is not in {self.where} ({self.count} keys){hint}"

    def __repr__(self) -> str:
        return repr(str(self))

    def __reduce__(self):  # pickled (to another process) as the plain message
        return (str, (str(self),))


def missing_key_error(key, where: str, count: int, candidates, prefix: str = "") -> MissingKeyError:
    """MissingKeyError for ``key``: one line, with close matches among ``candidates()`` (a
    callable returning the keys; only called when the message is read) or, for an int key, the
    rule that keys are strings (``use '0'`` when that string is a key)."""
    return MissingKeyError(_MissingKeyText(key, where, count, candidates, prefix))


class Embeddings:
    """Unique string keys with one float32 vector each.

    Parameters
    ----------
    keys : sequence of str
        Unique keys (words, node ids, item ids...).
    vectors : array-like of shape (n, dim)
        Finite values; stored as contiguous float32.

    Raises
    ------
    InputError (a ValueError)
        On duplicate or non-string keys, a row count that does not match, or NaN/inf values.
    """

    def __init__(self, keys: Sequence[str], vectors, *, meta: dict | None = None):
        keys = as_keys(keys)
        self._vectors = as_vectors(vectors, n=len(keys))
        self._keys = keys
        self._key_to_index = {k: i for i, k in enumerate(keys)}
        self._unit: np.ndarray | None = None
        if meta is not None and not isinstance(meta, dict):
            raise InputError(f"meta must be a dict of JSON-able values; got {type(meta).__name__}")
        self.meta: dict = dict(meta or {})

    # ------------------------------------------------------------------ basics
    @property
    def keys(self) -> list[str]:
        return self._keys

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and key in self._key_to_index  # a non-string is never a key

    def __iter__(self):
        return iter(self._keys)

    def __repr__(self) -> str:
        return f"Embeddings(n={len(self)}, dim={self.dim})"

    @property
    def key_to_index(self) -> dict[str, int]:
        """Row of every key (gensim's KeyedVectors.key_to_index); do not modify."""
        return self._key_to_index

    def index_of(self, key: str) -> int:
        try:
            return self._key_to_index[key]
        except TypeError:  # unhashable: a list, slice, array...
            raise InputError(f"key must be a string; got {type(key).__name__} ({shown(key, 40)}); look up one "
                             "key at a time (emb.vectors[...] indexes rows by position)") from None
        except KeyError:
            raise missing_key_error(key, "these embeddings", len(self), lambda: self._keys) from None

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._vectors[self.index_of(key)]
        if isinstance(key, Iterable) and not isinstance(key, bytes):
            return self._vectors[[self.index_of(k) for k in key]]
        return self._vectors[self.index_of(key)]  # not a key: one line naming the rule

    # ------------------------------------------------------------ similarities
    def _unit_vectors(self) -> np.ndarray:
        if self._unit is None:
            self._unit = unit_rows(self._vectors)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two keys (0.0 if either vector is zero)."""
        u = self._unit_vectors()
        return float(u[self.index_of(a)] @ u[self.index_of(b)])

    def most_similar(self, query=None, k: int = 10, *, positive=None, negative=None, topn: int | None = None,
                     method: str = "add") -> list[tuple[str, float]]:
        """The ``k`` keys closest to a key (itself excluded) or a vector, or to an analogy.

        ``most_similar("king")`` / ``most_similar(vector)``: nearest keys by cosine.
        ``most_similar(positive=["king", "woman"], negative=["man"])``: gensim's
        ``KeyedVectors.most_similar`` (3CosAdd): the mean of the unit vectors of the positive
        keys and the negated unit vectors of the negative keys (vectors given as arrays are
        used as they are, as gensim does), normalised, scored by cosine against every key;
        keys given are excluded. ``method="mul"``: gensim's ``most_similar_cosmul`` (3CosMul,
        Levy & Goldberg 2014): score = prod((1 + cos(x, p)) / 2) / (prod((1 + cos(x, n)) / 2) + 1e-6).
        gensim's positional form ``most_similar(["king", "woman"], ["man"])`` and ``topn=``
        (an alias of ``k``) are accepted too.
        """
        if topn is not None:
            k = topn
        if isinstance(query, (list, tuple)) and query and all(isinstance(x, str) for x in query):
            if positive is not None:
                raise InputError("most_similar: give positive keys either first or as positive=, not both")
            positive, query = list(query), None  # gensim's most_similar(positive, negative, topn)
            if isinstance(k, (list, tuple, str)):
                if negative is not None:
                    raise InputError("most_similar: give negative keys either second or as negative=, not both")
                negative, k = k, 10 if topn is None else topn
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be an int >= 1; got {k!r}")
        if method not in ("add", "mul"):
            raise InputError(f"most_similar: method must be 'add' (3CosAdd) or 'mul' (3CosMul); got {method!r}")
        if positive is not None or negative is not None or method == "mul":
            if query is not None:
                if positive is not None:
                    raise InputError("most_similar: give either a query or positive=/negative= examples, not both")
                positive = [query]
            return self._analogy(positive, negative, int(k), method)
        if query is None:
            raise InputError("most_similar: give a key, a vector, or positive=/negative= examples")
        unit = self._unit_vectors()
        if isinstance(query, (str, bytes)) or not isinstance(query, Iterable):  # a key (an int says keys are strings)
            i = self.index_of(query)
            q, exclude = unit[i:i + 1], np.array([[i]], dtype=np.int64)
        else:
            q = as_vectors(query, what="query vector", allow_1d=True)
            if q.shape[0] != 1:
                raise InputError(f"query must be one key or one vector; got {q.shape[0]} vectors")
            if q.shape[1] != self.dim:
                raise InputError(f"query vector has dim {q.shape[1]} but these embeddings have dim {self.dim}")
            norm = float(np.linalg.norm(q))
            if norm == 0.0:
                raise InputError("query vector is all zeros; cosine similarity is undefined for it")
            q, exclude = q / norm, None
        # the cached unit vectors (valid since __init__) and a unit query: inner product = cosine,
        # without checking or normalising n rows per call
        scores, rows = knn_search(unit, q, int(k), exclude=exclude)
        return [(self._keys[i], float(s)) for i, s in zip(rows[0].tolist(), scores[0].tolist())]

    def most_similar_cosmul(self, positive=None, negative=None, topn: int = 10) -> list[tuple[str, float]]:
        """gensim's ``KeyedVectors.most_similar_cosmul``: ``most_similar(..., method="mul")``."""
        return self.most_similar(positive=positive, negative=negative, k=topn, method="mul")

    def _terms(self, items, what):
        """Unit vectors of keys / vectors as given, and the rows of the keys (gensim's rules)."""
        if items is None:
            return [], []
        if isinstance(items, (str, np.ndarray)):
            items = [items]
        unit = self._unit_vectors()
        vecs, rows = [], []
        for j, item in enumerate(items):
            if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
                i = self.index_of(item)
                rows.append(i)
                vecs.append(unit[i])
            else:
                v = as_vectors(item, what=f"{what}[{j}]", allow_1d=True)
                if v.shape != (1, self.dim):
                    raise InputError(f"{what}[{j}] must be one key or one vector of dim {self.dim}; got shape {v.shape}")
                vecs.append(v[0])
        return vecs, rows

    def _analogy(self, positive, negative, k, method):
        pos, pos_rows = self._terms(positive, "positive")
        neg, neg_rows = self._terms(negative, "negative")
        used = sorted(set(pos_rows + neg_rows))
        unit = self._unit_vectors()
        if method == "add":
            if not pos and not neg:
                raise InputError("most_similar: cannot compute similarity with no input; give positive= or negative=")
            mean = np.array(pos + [-v for v in neg], dtype=np.float32).mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm == 0.0:
                raise InputError("most_similar: the examples cancel out (their mean is the zero vector)")
            scores = unit @ (mean / norm).astype(np.float32)
        else:
            if not pos:
                raise InputError("most_similar: method='mul' needs at least one positive example")
            scores = np.prod([(1 + unit @ t) / 2 for t in pos], axis=0)
            scores = scores / ((np.prod([(1 + unit @ t) / 2 for t in neg], axis=0) if neg else 1.0) + 0.000001)
            scores = scores.astype(np.float32)
        scores[used] = -np.inf
        want = min(k, len(self) - len(used))
        if want <= 0:
            return []
        top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]
        return [(self._keys[i], float(scores[i])) for i in top.tolist()]

    def doesnt_match(self, keys) -> str:
        """The key furthest from the mean of the others (gensim's ``doesnt_match``): the one
        whose unit vector has the lowest cosine with the normalised mean of all unit vectors.
        Keys not present are left out with a UserWarning naming them (gensim logs them); at least
        2 present keys are needed (MissingKeyError when unknown keys leave fewer, else InputError)."""
        import warnings

        if isinstance(keys, str):
            raise InputError("doesnt_match: give a list of keys, not one string")
        given = list(keys)
        present = [k for k in given if k in self]
        missing = [k for k in given if k not in self]
        shown_missing = ", ".join(map(repr, missing[:10])) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        if len(present) < 2:
            need = f"doesnt_match needs at least 2 keys that are present; got {len(present)} of {len(given)}"
            if missing:
                raise MissingKeyError(f"{need} (not present: {shown_missing})")
            raise InputError(f"{need}; give a list of 2 or more keys")
        if missing:
            warnings.warn(f"doesnt_match: left out {len(missing)} keys not present: {shown_missing}", UserWarning,
                          stacklevel=2)
        unit = self._unit_vectors()[[self._key_to_index[k] for k in present]]
        mean = unit.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        dists = unit @ (mean / norm if norm else mean)
        return sorted(zip(dists.tolist(), present))[0][1]

    # ---------------------------------------------------------------- indexing
    def to_index(self, metric: str = "cosine", kind: str = "auto", *, show_progress: bool = False, **options):
        """Build a :class:`~embedkit.VectorIndex` holding every vector (options go to VectorIndex)."""
        import inspect

        from .index import VectorIndex

        valid = [p for p in inspect.signature(VectorIndex.__init__).parameters if p not in ("self", "dim")]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise InputError(f"to_index: unknown option {', '.join(map(repr, unknown))}; VectorIndex takes "
                             f"{', '.join(valid)}")
        idx = VectorIndex(self.dim, metric=metric, kind=kind, **options)
        idx.add(self._keys, self._vectors, show_progress=show_progress)
        return idx

    # ---------------------------------------------------------------- save/load
    def save(self, path) -> None:
        """Save losslessly to an ``.npz`` file (no pickle). Written atomically."""
        path = as_path(path)
        buf = io.BytesIO()
        # keys as UTF-8 bytes + offsets: numpy's fixed-width str arrays drop trailing NULs
        blobs = [k.encode("utf-8") for k in self._keys]
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        if blobs:
            np.cumsum([len(b) for b in blobs], out=offsets[1:])
        np.savez(buf, format=np.array(_FORMAT), keys_utf8=np.frombuffer(b"".join(blobs), dtype=np.uint8),
                 keys_offsets=offsets, vectors=self._vectors)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path) -> "Embeddings":
        """Load what :meth:`save` wrote (an ``.npz`` of keys and vectors; never a pickle).

        Raises StoreError (one line) for a missing file, a directory, or a file that is not such
        an ``.npz`` (a ``.npy`` array, word2vec text, anything else), saying what to give instead.
        """
        path = as_path(path)
        if not path.exists():
            raise StoreError(f"{path}: no such file")
        if path.is_dir():
            raise StoreError(f"{path}: is a directory; give the .npz file written by Embeddings.save")
        _refuse_non_npz(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if "vectors" not in data or ("keys" not in data and "keys_utf8" not in data):
                    raise StoreError(f"{path}: not an embeddings file (needs 'keys' and 'vectors' arrays)")
                if "keys_utf8" in data:
                    keys = _unpack_keys(path, data["keys_utf8"], data["keys_offsets"] if "keys_offsets" in data else None)
                else:  # files written before keys were stored as UTF-8 bytes
                    keys = [str(k) for k in data["keys"].tolist()]
                vectors = data["vectors"]
        except StoreError:
            raise
        except Exception as exc:  # zipfile/ValueError from a damaged file
            raise StoreError(f"{path}: cannot read embeddings ({type(exc).__name__}: {exc})") from None
        return cls(keys, vectors)

    def save_word2vec_format(self, path, binary: bool = False) -> None:
        """Write the word2vec text or binary format (readable by gensim's KeyedVectors)."""
        for k in self._keys:
            if not k or any(c.isspace() for c in k):
                raise InputError(
                    f"key {k!r} is empty or holds whitespace, which the word2vec format cannot store; "
                    "use Embeddings.save() instead"
                )
        out = io.BytesIO()
        out.write(f"{len(self)} {self.dim}\n".encode())
        if binary:
            vecs = self._vectors.astype("<f4", copy=False)
            for k, v in zip(self._keys, vecs):
                out.write(k.encode("utf-8") + b" " + v.tobytes() + b"\n")
        else:
            for k, v in zip(self._keys, self._vectors):
                out.write((k + " " + " ".join(repr(float(x)) for x in v) + "\n").encode("utf-8"))
        atomic_write_bytes(as_path(path), out.getvalue())

    @classmethod
    def load_word2vec_format(cls, path, binary: bool = False) -> "Embeddings":
        """Read the word2vec text or binary format (as written by gensim or word2vec.c)."""
        path = as_path(path)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory; give a word2vec text or binary file")
        with open(path, "rb") as fh:
            header = fh.readline(_MAX_HEADER + 1)
            _refuse_archive(path, header)
            if header.startswith(BOM):  # written by an editor that marks UTF-8
                header = header[len(BOM):]
            if len(header) > _MAX_HEADER or (header and not header.endswith(b"\n")):
                raise ParseError(path, 1, f"expected a header line 'COUNT DIM', got {header[:60]!r}... "
                                 f"(no newline within {_MAX_HEADER} bytes); is this a word2vec file?")
            try:
                n, dim = (int(x) for x in header.split())
            except ValueError:
                shown = header[:60].decode("utf-8", "replace").rstrip()
                raise ParseError(path, 1, f"expected a header 'COUNT DIM', got {shown!r}; give a word2vec "
                                 "text or binary file (first line: the number of vectors and their dim, e.g. "
                                 "'3000 100') or an .npz written by Embeddings.save") from None
            if n < 0 or dim < 1:
                raise ParseError(path, 1, f"bad header counts n={n} dim={dim}")
            if binary:
                _refuse_text_as_binary(fh, path, dim, n)
            _check_header_claim(fh, path, n, dim, binary)
            keys: list[str] = []
            vectors = np.empty((n, dim), dtype=np.float32)
            if binary:
                _read_w2v_binary(fh, path, n, dim, keys, vectors)
            else:
                _read_w2v_text(fh, path, n, dim, keys, vectors)
        return cls(keys, vectors)


def check_embeddings(emb, what: str = "emb") -> None:
    """Refuse anything but Embeddings (keys and vectors) in one line, before an AttributeError."""
    if not (hasattr(emb, "keys") and hasattr(emb, "vectors")) or isinstance(emb, dict):
        raise InputError(f"{what} must be an ek.Embeddings; got {type(emb).__name__} "
                         "(wrap vectors as ek.Embeddings(keys, vectors))")


_MAX_HEADER = 256
_BINARY_HINT = "for the binary word2vec format pass binary=True (CLI: --binary, or a name ending in .bin)"


def _refuse_text_as_binary(fh, path, dim, n) -> None:
    """ParseError when binary=True is given for a text word2vec file: everything read after the header
    (up to 64 KiB) is UTF-8 text without NUL bytes, and its first rows (up to 3) are each a word and
    ``dim`` plain decimal numbers. Binary float32 rows practically always hold a NUL or a byte that is
    no UTF-8 (a lone 0x80-0xff), so a real binary file is never refused, whatever its dim."""
    if not fh.seekable():
        return
    start = fh.tell()
    chunk = fh.read(1 << 16)
    fh.seek(start)
    if not looks_like_text(chunk):
        return
    rows = [r for r in chunk.split(b"\n")[:min(max(n, 1), 3)] if r.strip()]
    if not rows:
        return
    for row in rows:
        parts = row.split()
        if len(parts) != dim + 1 or not all(_DECIMAL.fullmatch(x) for x in parts[1:]):
            return
    raise ParseError(path, None, "looks like the text word2vec format, not binary; drop binary=True "
                     "(CLI: no --binary, or a name not ending in .bin)")


_DECIMAL = re.compile(rb"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _refuse_non_npz(path: Path) -> None:
    """StoreError for a file that is not an .npz (zip) archive, before numpy calls it pickled data."""
    kind = numpy_kind(path)
    if kind in ("npz", "unknown"):
        return  # an archive, or a file np.load will say it cannot open
    if kind == "npy":
        raise StoreError(f"{path}: cannot read embeddings: a .npy array (vectors without keys), not an .npz archive; "
                         "save keys and vectors together with ek.Embeddings(keys, vectors).save(path)")
    fix = "give a file written by Embeddings.save / np.savez"
    if kind == "text":
        with open(path, "rb") as fh:
            first = fh.readline(_MAX_HEADER)
        if re.fullmatch(rb"(\xef\xbb\xbf)?\s*\d+\s+\d+\s*", first):
            fix += "; this looks like word2vec text: read it with Embeddings.load_word2vec_format"
    raise StoreError(f"{path}: cannot read embeddings: {numpy_problem('npz', kind, fix)}")


def _refuse_archive(path: Path, head: bytes) -> None:
    """ParseError for a NumPy file given where the word2vec format is read."""
    if head.startswith(NPY_MAGIC):
        raise ParseError(path, None, "a NumPy .npy array (vectors without keys), which is not accepted here; give "
                         "an .npz of keys and vectors written by Embeddings.save, or a word2vec text or binary file")
    if head.startswith(ZIP_MAGIC):
        raise ParseError(path, None, "a zip (.npz) archive, not the word2vec format; read it with Embeddings.load "
                         "(`embedkit index build` does for a name ending in .npz)")


def _check_header_claim(fh, path, n, dim, binary) -> None:
    """Refuse a header whose counts the file cannot hold (before allocating n x dim floats).

    Every text row needs at least a 1-byte word and " x" per value plus a newline; every binary
    entry a 1-byte word, a space and 4 bytes per value. Only regular files have a size to check.
    """
    import os
    import stat

    st = os.fstat(fh.fileno())
    if not stat.S_ISREG(st.st_mode):
        if n * dim > 1 << 31:
            raise ParseError(path, 1, f"header claims {n} vectors of dim {dim}, too many to read from a stream")
        return
    left = st.st_size - fh.tell()
    per_row = (2 + 4 * dim) if binary else (2 + 2 * dim)
    if dim > left or n * per_row > left:
        raise ParseError(path, 1, f"header claims {n} vectors of dim {dim}, which need at least {n * per_row} bytes, "
                         f"but the file has {left} bytes after the header; the header is wrong or the file is truncated")


def _unpack_keys(path, blob, offsets) -> list[str]:
    if (offsets is None or blob.dtype != np.uint8 or blob.ndim != 1 or offsets.dtype != np.int64
            or offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(blob)
            or (np.diff(offsets) < 0).any()):
        raise StoreError(f"{path}: damaged key arrays (keys_utf8 / keys_offsets disagree)")
    raw = blob.tobytes()
    try:
        return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError:
        raise StoreError(f"{path}: damaged keys (not valid UTF-8)") from None


def _read_w2v_text(fh, path, n, dim, keys, vectors):
    line_no = 1
    limit = 4096 + 64 * dim  # a word and dim numbers; anything longer is not a word2vec row
    for i in range(n):
        raw = fh.readline(limit + 1)
        line_no += 1
        if not raw:
            raise ParseError(path, line_no, f"file ends after {i} of {n} vectors announced in the header")
        if len(raw) > limit:
            raise ParseError(path, line_no, f"line longer than {limit} bytes, too long for a word and {dim} numbers")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(path, line_no, f"not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                             f"{ICONV}, or {_BINARY_HINT}") from None
        parts = text.rstrip("\n\r").rstrip(" ").split(" ")
        if len(parts) != dim + 1:
            raise ParseError(path, line_no, f"expected a word and {dim} numbers, got {len(parts) - 1} numbers")
        try:
            vectors[i] = np.array(parts[1:], dtype=np.float32)
        except ValueError:
            raise ParseError(path, line_no, f"non-numeric value in the vector of {parts[0]!r}") from None
        keys.append(parts[0])


def _read_w2v_binary(fh, path, n, dim, keys, vectors):
    nbytes = 4 * dim
    for i in range(n):
        word = bytearray()
        while True:
            ch = fh.read(1)
            if not ch:
                raise ParseError(path, None, f"file ends inside entry {i + 1} of {n}")
            if len(word) > 4096:
                raise ParseError(path, None, f"entry {i + 1}: word longer than 4096 bytes; is the dim in the header right?")
            if ch == b" ":
                break
            if ch != b"\n":  # word2vec.c writes a newline after each vector
                word += ch
        data = fh.read(nbytes)
        if len(data) != nbytes:
            raise ParseError(path, None, f"file ends inside the vector of entry {i + 1} of {n}")
        try:
            keys.append(word.decode("utf-8"))
        except UnicodeDecodeError:
            raise ParseError(path, None, f"entry {i + 1}: word is not valid UTF-8") from None
        vectors[i] = np.frombuffer(data, dtype="<f4")
