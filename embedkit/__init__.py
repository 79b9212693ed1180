"""embedkit: train embeddings (word2vec, node2vec, matrix factorisation, Siamese encoders,
autoencoders) and search them with FAISS.

    import embedkit as ek
    emb = ek.Word2Vec(dim=100).fit("corpus.txt")
    idx = emb.to_index(metric="cosine")
    idx.search_keys(["king"], k=10).keys

Trainers and loaders are imported lazily so ``import embedkit`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
import logging

from . import _device  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch/FAISS load OpenMP, only when unset)
from ._version import __version__
from .embeddings import Embeddings
from .errors import EmbedkitError, IgnoredParameterWarning, InputError, MissingKeyError, NotFittedError, ParseError, StoreError

logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> module that defines it (loaded on first use)
_LAZY = {
    "VectorIndex": "embedkit.index",
    "SearchResult": "embedkit.index",
    "Store": "embedkit.store",
    "Corpus": "embedkit.data.corpus",
    "Graph": "embedkit.data.graph",
    "Interactions": "embedkit.data.interactions",
    "Word2Vec": "embedkit.trainers.word2vec",
    "Node2Vec": "embedkit.trainers.node2vec",
    "MatrixFactorization": "embedkit.trainers.mf",
    "SiameseEncoder": "embedkit.trainers.encoders",
    "AutoEncoder": "embedkit.trainers.encoders",
    "KNNEstimator": "embedkit.trainers.encoders",
    "FastText": "embedkit.trainers.fasttext",
    "FastTextEmbeddings": "embedkit.trainers.fasttext",
    "MetaPath2Vec": "embedkit.trainers.metapath2vec",
    "HybridMF": "embedkit.trainers.mf",
    "ItemKNN": "embedkit.trainers.mf",
    "Popularity": "embedkit.trainers.mf",
    "SideFeatures": "embedkit.trainers.mf",
    "filter_mask": "embedkit.index",
    "compile_filter": "embedkit.index",
    "load_model": "embedkit.trainers",
    "evaluate": "embedkit.evaluate",
}

__all__ = ["Embeddings", "EmbedkitError", "IgnoredParameterWarning", "InputError", "MissingKeyError",
           "NotFittedError", "ParseError", "StoreError", "__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'embedkit' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if name == "evaluate" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
