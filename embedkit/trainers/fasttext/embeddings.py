"""FastTextEmbeddings: word vectors plus the character n-gram bucket matrix, so that
``emb["unseenword"]`` answers words the training never saw.

A word's n-grams are those of ``"<" + word + ">"`` with ``min_n..max_n`` characters, hashed
into ``bucket`` rows by fastText's FNV-1a hash exactly as gensim computes it
(``gensim.models.fasttext.ft_ngram_hashes``), so vectors of either backend answer alike.
A known word's vector is the trained one (the mean of its own row and its n-gram rows); an
unknown word's is the mean of its n-gram rows (gensim, fastText). Saved without pickle: one
``.npz`` of arrays with a JSON config.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..._io import atomic_write_bytes
from ...embeddings import Embeddings
from ...errors import InputError, MissingKeyError, StoreError

__all__ = ["FastTextEmbeddings", "ngram_hashes"]

_FORMAT = "embedkit.fasttext-embeddings/1"


def ngram_hashes(word: str, min_n: int, max_n: int, bucket: int) -> list[int]:
    """Bucket rows of ``word``'s character n-grams (fastText's hash, as gensim computes it)."""
    from gensim.models.fasttext import ft_ngram_hashes

    if max_n < min_n or bucket <= 0:
        return []
    return [int(h) for h in ft_ngram_hashes(word, min_n, max_n, bucket)]


class FastTextEmbeddings(Embeddings):
    """Embeddings that also answer words outside their keys from character n-grams.

    ``emb[word]`` / ``emb.vector(word)``: the trained vector of a known word, else the mean of
    the word's n-gram rows (MissingKeyError when it has none, e.g. with ``max_n < min_n``).
    ``word in emb`` stays True only for known words (keys); ``emb.has_vector(word)`` says
    whether a vector can be made. ``similarity`` and ``most_similar`` take unknown words too.
    """

    def __init__(self, keys, vectors, ngrams, *, min_n: int, max_n: int, meta: dict | None = None):
        super().__init__(keys, vectors, meta=meta)
        self.ngrams = np.ascontiguousarray(ngrams, dtype=np.float32)
        if self.ngrams.ndim != 2 or (len(self.ngrams) and self.ngrams.shape[1] != self.dim):
            raise InputError(f"ngrams must be a (bucket, {self.dim}) matrix; got shape {self.ngrams.shape}")
        self.min_n, self.max_n = int(min_n), int(max_n)

    @property
    def bucket(self) -> int:
        return int(self.ngrams.shape[0])

    def _oov(self, word: str) -> np.ndarray | None:
        rows = ngram_hashes(word, self.min_n, self.max_n, self.bucket)
        if not rows:
            return None
        return self.ngrams[rows].mean(axis=0)

    def has_vector(self, word: str) -> bool:
        return word in self or bool(ngram_hashes(word, self.min_n, self.max_n, self.bucket))

    def vector(self, word: str) -> np.ndarray:
        """The vector of ``word``, known or not (see the class docstring)."""
        if word in self:
            return self._vectors[self.index_of(word)]
        v = self._oov(word)
        if v is None:
            raise MissingKeyError(f"key {word!r} is not in these embeddings and has no character n-grams "
                                  f"(min_n={self.min_n}, max_n={self.max_n})")
        return v

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.vector(key)
        if isinstance(key, (list, tuple)) and all(isinstance(k, str) for k in key):
            return np.stack([self.vector(k) for k in key]) if key else np.zeros((0, self.dim), np.float32)
        return super().__getitem__(key)

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
        return float(va @ vb) / (na * nb) if na > 0 and nb > 0 else 0.0

    def most_similar(self, query=None, k: int = 10, **kwargs):
        if isinstance(query, str) and query not in self and not kwargs:
            return super().most_similar(self.vector(query), k)
        return super().most_similar(query, k, **kwargs)

    def __repr__(self) -> str:
        return (f"FastTextEmbeddings({len(self)} keys, dim {self.dim}, {self.bucket} n-gram buckets, "
                f"n-grams {self.min_n}..{self.max_n})")

    # ------------------------------------------------------------ persistence (no pickle)
    def to_arrays(self) -> dict:
        config = {"format": _FORMAT, "min_n": self.min_n, "max_n": self.max_n, "meta": self.meta}
        return {"config": np.array(json.dumps(config, default=str)), "keys": np.asarray(self.keys, dtype=str),
                "vectors": self._vectors, "ngrams": self.ngrams}

    @classmethod
    def from_arrays(cls, arrays, source: str = "arrays") -> "FastTextEmbeddings":
        try:
            config = json.loads(str(np.asarray(arrays["config"])))
            if config.get("format") != _FORMAT:
                raise ValueError(f"format {config.get('format')!r} is not {_FORMAT!r}")
            return cls([str(k) for k in np.asarray(arrays["keys"]).tolist()], np.asarray(arrays["vectors"]),
                       np.asarray(arrays["ngrams"]), min_n=config["min_n"], max_n=config["max_n"],
                       meta=config.get("meta"))
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{source}: not saved FastTextEmbeddings ({type(exc).__name__}: {exc})") from None

    def save(self, path) -> None:
        """One ``.npz`` file (arrays + JSON config; no pickle), written atomically."""
        buf = io.BytesIO()
        np.savez(buf, **self.to_arrays())
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path) -> "FastTextEmbeddings":
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:
            raise StoreError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
        return cls.from_arrays(arrays, str(path))
