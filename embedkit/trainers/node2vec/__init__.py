"""Node2Vec: p/q-biased random walks (``walks.py``, ``walk_stream.py``, ``common_weights.py``)
trained by the shared skip-gram engines (``trainers/sgns``); the model in ``model.py``."""

from .model import Node2Vec

__all__ = ["Node2Vec"]
