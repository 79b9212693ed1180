"""Embeddings: the one result type every trainer returns (string keys + float32 vectors)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._arrays import as_keys, as_vectors
from ._io import atomic_write_bytes
from ._knn import knn_search, unit_rows
from .errors import InputError, MissingKeyError, ParseError, StoreError

__all__ = ["Embeddings"]

_FORMAT = "embedkit.embeddings/1"


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
        return key in self._key_to_index

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
        except KeyError:
            raise MissingKeyError(f"key {key!r} is not in these embeddings ({len(self)} keys)") from None

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._vectors[self.index_of(key)]
        if isinstance(key, Iterable):
            return self._vectors[[self.index_of(k) for k in key]]
        raise MissingKeyError(f"key {key!r} is not in these embeddings (keys are strings)")

    # ------------------------------------------------------------ similarities
    def _unit_vectors(self) -> np.ndarray:
        if self._unit is None:
            self._unit = unit_rows(self._vectors)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two keys (0.0 if either vector is zero)."""
        u = self._unit_vectors()
        return float(u[self.index_of(a)] @ u[self.index_of(b)])

    def most_similar(self, query, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` keys closest to a key (itself excluded) or to a vector, by cosine."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be an int >= 1; got {k!r}")
        unit = self._unit_vectors()
        if isinstance(query, str):
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

    # ---------------------------------------------------------------- indexing
    def to_index(self, metric: str = "cosine", kind: str = "auto", *, show_progress: bool = False, **options):
        """Build a :class:`~embedkit.VectorIndex` holding every vector (options go to VectorIndex)."""
        from .index import VectorIndex

        idx = VectorIndex(self.dim, metric=metric, kind=kind, **options)
        idx.add(self._keys, self._vectors, show_progress=show_progress)
        return idx

    # ---------------------------------------------------------------- save/load
    def save(self, path) -> None:
        """Save losslessly to an ``.npz`` file (no pickle). Written atomically."""
        path = Path(path)
        buf = io.BytesIO()
        np.savez(buf, format=np.array(_FORMAT), keys=np.array(self._keys, dtype=str),
                 vectors=self._vectors)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path) -> "Embeddings":
        """Load what :meth:`save` wrote."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "keys" not in data or "vectors" not in data:
                    raise StoreError(f"{path}: not an embeddings file (needs 'keys' and 'vectors' arrays)")
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
        atomic_write_bytes(Path(path), out.getvalue())

    @classmethod
    def load_word2vec_format(cls, path, binary: bool = False) -> "Embeddings":
        """Read the word2vec text or binary format (as written by gensim or word2vec.c)."""
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        with open(path, "rb") as fh:
            header = fh.readline()
            try:
                n, dim = (int(x) for x in header.split())
            except ValueError:
                raise ParseError(path, 1, f"expected a header 'COUNT DIM', got {header[:60]!r}") from None
            if n < 0 or dim < 1:
                raise ParseError(path, 1, f"bad header counts n={n} dim={dim}")
            keys: list[str] = []
            vectors = np.empty((n, dim), dtype=np.float32)
            if binary:
                _read_w2v_binary(fh, path, n, dim, keys, vectors)
            else:
                _read_w2v_text(fh, path, n, dim, keys, vectors)
        return cls(keys, vectors)


def _read_w2v_text(fh, path, n, dim, keys, vectors):
    line_no = 1
    for i in range(n):
        raw = fh.readline()
        line_no += 1
        if not raw:
            raise ParseError(path, line_no, f"file ends after {i} of {n} vectors announced in the header")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(path, line_no, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
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
