"""MetaPath2Vec: metapath-constrained random walks on heterogeneous graphs (``walks.py``)
trained by the shared skip-gram engine (``trainers/sgns``); the model in ``model.py``."""

from .model import MetaPath2Vec
from .walks import MetaPathWalker, parse_metapath

__all__ = ["MetaPath2Vec", "MetaPathWalker", "parse_metapath"]
