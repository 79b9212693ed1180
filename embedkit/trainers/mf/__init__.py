"""Matrix factorisation: the model (``model.py``), its solvers (``als.py`` for ALS, ``bpr.py`` for
BPR, ``sgd.py`` for explicit SGD, ``implicit_backend.py``), the training loop and fold-in
(``fit.py``), the saved layout with its one writer and reader (``store.py``) and the one
recommender (``recommend.py``)."""

from .model import MatrixFactorization

__all__ = ["MatrixFactorization"]
