"""Feature-table encoders: the shared table-model base (``base.py``), SiameseEncoder
(``siamese.py``, self-supervised modes in ``selfsup.py``), AutoEncoder (``autoencoder.py``),
their losses (``losses.py``) and the latent k-NN estimator (``knn.py``)."""

from .autoencoder import AutoEncoder
from .knn import KNNEstimator
from .siamese import SiameseEncoder

__all__ = ["AutoEncoder", "KNNEstimator", "SiameseEncoder"]
