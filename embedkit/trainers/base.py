"""The small base class every trainer shares: params, fitted state, progress and callbacks."""

from __future__ import annotations

import inspect
import logging
from typing import Callable, Optional

from ..errors import InputError, NotFittedError

log = logging.getLogger(__name__)

Callback = Optional[Callable[[int, float], object]]


class Trainer:
    """Hyper-parameters go in ``__init__`` (stored as attributes of the same name),
    data goes in ``fit``, which returns :class:`~embedkit.Embeddings` and keeps them as
    ``embeddings_``. ``loss_history_`` holds one mean loss per epoch.
    """

    embeddings_ = None
    loss_history_: list

    def get_params(self) -> dict:
        """Constructor parameters and their current values (JSON-friendly where possible)."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for name, p in sig.parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[name] = getattr(self, name, p.default)
        return out

    def json_params(self) -> dict:
        """get_params() with values that JSON cannot hold turned into strings."""
        out = {}
        for k, v in self.get_params().items():
            if v is None or isinstance(v, (bool, int, float, str)):
                out[k] = v
            elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
                out[k] = list(v)
            else:
                out[k] = repr(v)
        return out

    def _check_fitted(self):
        if self.embeddings_ is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    @staticmethod
    def _check_callback(owner: str, callback):
        if callback is not None and not callable(callback):
            raise InputError(f"The 'callback' parameter of {owner}.fit must be callable(epoch, loss) or None. "
                             f"Got {callback!r} instead.")
        return callback

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
