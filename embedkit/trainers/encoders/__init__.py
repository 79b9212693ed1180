"""Feature-table encoders: the shared table-model base (``base.py``), SiameseEncoder
(``siamese.py``), AutoEncoder (``autoencoder.py``) and their losses (``losses.py``)."""

from .autoencoder import AutoEncoder
from .siamese import SiameseEncoder

__all__ = ["AutoEncoder", "SiameseEncoder"]
