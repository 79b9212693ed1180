"""Matrix factorisation: the model (``model.py``), its solvers (``als.py``, ``sgd.py`` for BPR and
explicit SGD, ``implicit_backend.py``), the training loop (``fit.py``), the store layout and its
one reader (``store.py``) and the one recommender (``recommend.py``)."""

from .model import MatrixFactorization

__all__ = ["MatrixFactorization"]
