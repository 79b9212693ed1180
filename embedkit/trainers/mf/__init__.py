"""Matrix factorisation: the model (``model.py``), its solvers (``als.py`` for ALS, ``bpr.py`` for
BPR, ``sgd.py`` for explicit SGD, ``implicit_backend.py``), the training loop and fold-in
(``fit.py``; under torch.distributed ``distributed.py``), the saved layout with its one writer
and reader (``store.py``) and the one recommender (``recommend.py``). Beside it, with the same ``recommend`` API: the baselines
(``baselines.py``: Popularity, ItemKNN) and the side-feature hybrid for cold start
(``hybrid.py``: HybridMF, with ``features.py``: Features)."""

from .baselines import ItemKNN, Popularity
from .features import Features
from .hybrid import HybridMF
from .model import MatrixFactorization

SideFeatures = Features  # the name embedkit exports (embedkit.data has a FeatureTable of its own)


def load_recommender(name: str, store=None):
    """The recommender saved as ``name`` in ``store``, whatever its class: MatrixFactorization
    (searching its stored index) or, by the manifest's trainer, HybridMF / ItemKNN / Popularity.
    All answer ``recommend_batch(users, k=, exclude_seen=, filter=)`` (used by the CLI)."""
    from ...store import Store

    store = store if isinstance(store, Store) else Store(store)
    trainer = (store.info(name).get("meta") or {}).get("trainer")
    cls = {"HybridMF": HybridMF, "ItemKNN": ItemKNN, "Popularity": Popularity}.get(trainer, MatrixFactorization)
    return cls.from_store(name, store)

__all__ = ["Features", "HybridMF", "ItemKNN", "MatrixFactorization", "Popularity", "SideFeatures", "load_recommender"]
