"""The contract every trainer keeps (Word2Vec, Node2Vec, MatrixFactorization, SiameseEncoder,
AutoEncoder):

* Hyper-parameters go in ``__init__`` and are stored, unchanged, as attributes of the same name;
  ``get_params()`` / ``set_params()`` read and write them and ``type(m)(**m.get_params())``
  builds an equal, unfitted trainer.
* ``_parameter_constraints`` (see :mod:`embedkit._validation`) covers every constructor
  parameter; ``fit`` checks them all first (``_validate_params``), then warns once per
  parameter that the chosen method or variant ignores (``_ignored_params``) when it was set
  to a non-default value.
* ``fit(data, *, show_progress=True, callback=None)`` returns :class:`~embedkit.Embeddings`
  and sets the fitted attributes, whose names end in ``_`` (``embeddings_``,
  ``loss_history_``...). None of them exists before ``fit``. ``callback(epoch, loss)`` is
  called after every epoch with ``epoch`` counted from 1.
* A fitted trainer is a model that saves without pickle: ``to_arrays()`` / ``from_arrays()``
  (a dict of numpy arrays with a JSON config), ``save(path)`` / ``load(path)`` (one ``.npz``
  file) and ``to_store(name)`` / ``from_store(name)`` (an index of its vectors plus the model,
  with a manifest naming the trainer, its parameters and its loss history).

Renamed parameters stay accepted for a while: ``_param_aliases = {"old": "new"}`` makes
``Trainer(old=x)`` warn (FutureWarning) and set ``new``.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from .._validation import validate_params
from ..errors import IgnoredParameterWarning, InputError, NotFittedError, StoreError

log = logging.getLogger(__name__)

MODEL_FORMAT = "embedkit.model/1"
_CONFIG = "__config__"


_MISSING = object()


def _as_store(store):
    """``store`` itself when it is a Store, else the Store at that root (None: the default one)."""
    from ..store import Store

    return store if isinstance(store, Store) else Store(store)


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
        return list(v)
    if isinstance(v, np.generic):
        return v.item()
    return repr(v)


class Trainer:
    """Base class of the trainers; see the module docstring for the contract."""

    _parameter_constraints: dict = {}
    _param_aliases: dict = {}      # old name -> new name, accepted with a FutureWarning
    _module_params: tuple = ()     # constructor parameters holding objects JSON cannot hold

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [name for name, p in sig.parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and name not in cls._param_aliases]

    @classmethod
    def _defaults(cls) -> dict:
        sig = inspect.signature(cls.__init__)
        return {n: sig.parameters[n].default for n in cls._param_names()}

    def get_params(self, deep: bool = False) -> dict:
        """Constructor parameters and their current values (aliases left out)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Trainer":
        """Set constructor parameters (old names through their aliases); returns self."""
        known = set(self._param_names())
        for name, value in params.items():
            if name in self._param_aliases:
                name = self._alias(name, value)
            if name not in known:
                raise InputError(f"{type(self).__name__} has no parameter {name!r}; "
                                 f"valid parameters: {', '.join(sorted(known))}")
            setattr(self, name, value)
        self.__dict__.pop("_warned_ignored", None)
        return self

    def _alias(self, old: str, value=_MISSING) -> str:
        new = self._param_aliases[old]
        use = f"pass {new}={value!r}" if value is not _MISSING else f"use .{new}"
        warnings.warn(f"{type(self).__name__}: '{old}' is renamed '{new}'; '{old}' will be removed in a "
                      f"later release ({use})", FutureWarning, stacklevel=4)
        return new

    def _take_aliases(self, **given) -> None:
        """In ``__init__``: apply old parameter names that were passed (not ``_MISSING``/None).

        Giving both the old and the new name with different values is an error."""
        defaults = self._defaults()
        for old, value in given.items():
            if value is None or value is _MISSING:
                continue
            new = self._param_aliases[old]
            current = self.__dict__.get(new, defaults.get(new))
            if current != defaults.get(new) and current != value:
                raise InputError(f"{type(self).__name__}: '{old}' is the old name of '{new}'; got {old}={value!r} "
                                 f"and {new}={current!r}: pass only {new}=")
            self.__dict__[self._alias(old, value)] = value

    def __getattr__(self, name):
        # only called when normal lookup fails: old parameter names read the new attribute (with a warning)
        aliases = type(self)._param_aliases
        if name in aliases:
            self._alias(name)
            return getattr(self, aliases[name])
        prop = getattr(type(self), name, None)
        if isinstance(prop, property):  # the property raised AttributeError (NotFittedError): let its error through
            return prop.fget(self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        aliases = type(self)._param_aliases
        if name in aliases:
            name = self._alias(name, value)
        object.__setattr__(self, name, value)

    def json_params(self) -> dict:
        """get_params() with values that JSON cannot hold turned into strings."""
        return {k: _jsonable(v) for k, v in self.get_params().items()}

    def check_params(self) -> dict:
        """Check every parameter now (``fit`` does it first anyway); returns ``get_params()``.

        Raises InputError naming the parameter, its allowed values and the value given; warns
        (IgnoredParameterWarning, once per model) about parameters the settings do not use."""
        return self._validate_params()

    def _validate_params(self, *, warn: bool = True) -> dict:
        """Check every parameter against ``_parameter_constraints``; with ``warn``, warn about the
        ones ``_ignored_params()`` names. A ``fit`` that knows what is ignored only once its data
        and device are resolved passes ``warn=False`` and calls ``_warn_ignored`` itself."""
        params = self.get_params()
        validate_params(type(self).__name__, params, self._parameter_constraints)
        if warn:
            self._warn_ignored(params, self._ignored_params(), stacklevel=4)
        return params

    def _ignored_params(self) -> dict:
        """``{parameter: why}`` for the parameters the current settings do not use."""
        return {}

    def _warn_ignored(self, params: dict, ignored: dict, stacklevel: int = 3) -> None:
        """Warn once per model about each ``ignored`` parameter set to a non-default value
        (``stacklevel`` 3: called from ``fit``, the warning points at the caller of ``fit``)."""
        defaults = self._defaults()
        warned = self.__dict__.setdefault("_warned_ignored", set())
        for name, why in ignored.items():
            value = params.get(name)
            default = defaults.get(name)
            same = value is default or (type(value) is type(default) and value == default)
            if same or name in warned:
                continue
            warned.add(name)
            warnings.warn(f"{type(self).__name__}: the '{name}' parameter ({value!r}) is ignored {why}",
                          IgnoredParameterWarning, stacklevel=stacklevel)

    # ------------------------------------------------------------------ fitted state
    def _is_fitted(self) -> bool:
        return "embeddings_" in self.__dict__

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    @staticmethod
    def _check_callback(owner: str, callback):
        if callback is not None and not callable(callback):
            raise InputError(f"The 'callback' parameter of {owner}.fit must be callable(epoch, loss) or None. "
                             f"Got {callback!r} instead.")
        return callback

    def _loss_history(self) -> list[float]:
        return [float(x) for x in getattr(self, "loss_history_", []) or []]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ model persistence
    # Subclasses implement _state_arrays() -> {name: ndarray} and _load_state(arrays, config);
    # _state_config() adds JSON-able facts (vocabulary sizes, chosen backend...).
    def _state_arrays(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not save its model yet")

    def _state_config(self) -> dict:
        return {}

    def _load_state(self, arrays: dict, config: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not load a model yet")

    def to_arrays(self) -> dict:
        """The fitted model as ``{name: numpy array}`` plus one JSON config string (no pickle)."""
        self._check_fitted()
        params = {k: v for k, v in self.json_params().items() if k not in self._module_params}
        config = {"format": MODEL_FORMAT, "class": type(self).__name__, "params": params,
                  "loss_history": self._loss_history(), "state": self._state_config()}
        arrays = {_CONFIG: np.array(json.dumps(config))}
        for k, v in self._state_arrays().items():
            arrays[k] = np.asarray(v)
        return arrays

    @classmethod
    def _read_config(cls, arrays, source: str) -> dict:
        try:
            config = json.loads(str(np.asarray(arrays[_CONFIG])))
        except (KeyError, ValueError) as exc:
            raise StoreError(f"{source}: not a saved embedkit model ({type(exc).__name__}: {exc})") from None
        if config.get("format") != MODEL_FORMAT:
            raise StoreError(f"{source}: format {config.get('format')!r} is not {MODEL_FORMAT!r}; "
                             "it was written by another embedkit version")
        if config.get("class") != cls.__name__:
            raise StoreError(f"{source}: holds a {config.get('class')}, not a {cls.__name__}; "
                             f"load it with ek.{config.get('class')}.load")
        return config

    @classmethod
    def from_arrays(cls, arrays, *, source: str = "arrays", **params):
        """Rebuild a fitted model from :meth:`to_arrays` output (``params`` override saved ones)."""
        config = cls._read_config(arrays, source)
        known = set(cls._param_names())
        saved = {k: v for k, v in config.get("params", {}).items() if k in known}
        obj = cls(**{**saved, **params})
        obj.loss_history_ = list(config.get("loss_history", []))
        try:
            obj._load_state({k: arrays[k] for k in (arrays.keys() if hasattr(arrays, "keys") else arrays.files)
                             if k != _CONFIG}, config.get("state", {}))
        except (KeyError, ValueError, IndexError) as exc:
            raise StoreError(f"{source}: the saved {cls.__name__} is incomplete or damaged "
                             f"({type(exc).__name__}: {exc})") from None
        return obj

    def save(self, path) -> Path:
        """Save the fitted model to one ``.npz`` file (``.npz`` added when missing), atomically."""
        from .._io import atomic_write_bytes

        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        buf = io.BytesIO()
        np.savez(buf, **self.to_arrays())
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path, **params):
        """Load what :meth:`save` wrote. Raises StoreError for a missing, damaged or foreign file."""
        path = Path(path)
        if not path.exists() and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        if not path.is_file():
            raise StoreError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zip or format damage
            raise StoreError(f"{path}: cannot read the saved model ({type(exc).__name__}: {exc})") from None
        return cls.from_arrays(arrays, source=str(path), **params)

    # ------------------------------------------------------------------ the store
    def _index_content(self):
        """(keys, vectors, default metric) of the index ``to_store`` writes."""
        emb = self.embeddings_
        return emb.keys, emb.vectors, "cosine"

    def _store_extras(self) -> dict:
        """Extras saved beside the index (name -> {array name: array}); the model by default."""
        return {"model": self.to_arrays()}

    def _store_meta(self) -> dict:
        return {}

    def to_store(self, name: str, store=None, *, metric: str | None = None, kind: str = "flat",
                 overwrite: bool = False, meta: dict | None = None, show_progress: bool = False) -> Path:
        """Write the fitted result into a :class:`~embedkit.Store` as ``name``: an index of its
        vectors, the model as the extra ``model``, and a manifest whose meta names the trainer,
        its parameters and its loss history. Returns the directory.
        """
        from ..index import VectorIndex

        self._check_fitted()
        store = _as_store(store)
        keys, vectors, default_metric = self._index_content()
        index = VectorIndex(vectors.shape[1], metric=metric or default_metric, kind=kind)
        index.add(keys, vectors, show_progress=show_progress)
        info = {"trainer": type(self).__name__, "params": self.json_params(), "loss_history": self._loss_history(),
                **self._store_meta(), **(meta or {})}
        return store.save(name, index, meta=info, extras=self._store_extras(), overwrite=overwrite)

    @classmethod
    def from_store(cls, name: str, store=None, **params):
        """The fitted model that :meth:`to_store` wrote as ``name``."""
        store = _as_store(store)
        meta = store.info(name).get("meta") or {}
        if meta.get("trainer") != cls.__name__:
            raise StoreError(f"index {name!r} in {store.root} was not written by {cls.__name__} "
                             f"(trainer: {meta.get('trainer', 'unknown')})")
        try:
            arrays = store.load_extra(name, "model")
        except StoreError:
            raise StoreError(f"index {name!r} in {store.root} holds vectors only, no {cls.__name__} model; "
                             "save it with model.to_store(name)") from None
        return cls.from_arrays(arrays, source=f"{store.root}/{name}", **params)


def load_from_store(name: str, store=None, **params):
    """The fitted trainer saved as ``name``, whatever its class (read from its manifest)."""
    import importlib

    from . import TRAINERS

    store = _as_store(store)
    trainer = (store.info(name).get("meta") or {}).get("trainer")
    module = TRAINERS.get(trainer)
    cls = getattr(importlib.import_module(module), trainer) if module else None
    if cls is None:
        raise StoreError(f"index {name!r} in {store.root} holds no trainer's model (trainer: {trainer or 'none'})")
    return cls.from_store(name, store, **params)
