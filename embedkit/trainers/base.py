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
  with a manifest naming the trainer, its parameters and its loss history). ``save(x, store=None)``
  and ``load(x, store=None)`` take either: a plain name (a str without ``/`` not ending in ``.npz``)
  is a store entry, anything else a file.

Renamed parameters stay accepted for a while: ``_param_aliases = {"old": "new"}`` makes
``Trainer(old=x)`` warn (FutureWarning) and set ``new``.

Every ``fit`` a subclass defines runs under the CPU thread policy of :mod:`embedkit._device`
(wrapped once, in ``__init_subclass__``): torch runs on one thread when ``_work_per_step``
says the model is small, and the previous count is restored afterwards. Importing this module
sets ``OMP_WAIT_POLICY=PASSIVE`` when it is unset and torch is not loaded yet.

Distributed (see :mod:`embedkit.distributed`): a ``fit`` that ends inside a process group of
N > 1 ranks records ``world_size_ = N`` (a single-process fit removes it: a refit is not the
earlier distributed fit), and ``to_store`` writes it in the manifest's meta as ``world_size``.
``save``/``to_store`` write on rank 0 alone (without waiting for the others, so a save called by
rank 0 alone works) and return None on the other ranks that call them too, once rank 0's write is
complete (see :func:`embedkit.distributed.main_writes`).
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .._device import fit_threads  # imported before any torch: sets OMP_WAIT_POLICY=PASSIVE when unset
from .._files import numpy_kind
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


def _is_store_name(path) -> bool:
    """The rule of :meth:`Trainer.save`: a str without a path separator and not ending in .npz names a store entry."""
    if not isinstance(path, str) or path.endswith(".npz"):
        return False
    return not any(sep and sep in path for sep in ("/", os.sep, os.altsep))


def _file_of(path: Path) -> Path | None:
    """``path`` or ``path.npz``, whichever is a file."""
    for p in (path, path.with_name(path.name + ".npz")):
        if p.is_file():
            return p
    return None


def _missing_entry(name: str, store, also_file: bool) -> str:
    root = store.root.resolve()
    where = f"the store {root}" + ("" if store.root.is_dir() else " (that folder does not exist)")
    have = ", ".join(store.names()) or "none"
    tail = f"; no file {name}.npz here either" if also_file else ""
    return (f"no index named {name!r} in {where} (indexes: {have}){tail}; pass store= (or set EMBEDKIT_STORE) "
            "or a file path ending in .npz")


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
        return list(v)
    if isinstance(v, np.generic):
        return v.item()
    return repr(v)


def _with_thread_policy(fit):
    """``fit`` run under :func:`embedkit._device.fit_threads` sized by ``self._work_per_step``."""

    @functools.wraps(fit)
    def fit_under_thread_policy(self, *args, **kwargs):
        try:
            work = self._work_per_step(args, kwargs)
        except Exception:  # an estimate must never stop a fit; fit itself reports bad input
            work = None
        before = self.__dict__.pop("world_size_", None)  # a refit in one process is not the earlier distributed fit
        fitted = self.__dict__.get("embeddings_")
        try:
            with fit_threads(work, type(self).__name__):
                result = fit(self, *args, **kwargs)
        except BaseException:
            if before is not None and fitted is not None and self.__dict__.get("embeddings_") is fitted:
                self.world_size_ = before  # the fit failed before replacing the earlier one: that one keeps its size
            raise
        from ..distributed import is_distributed

        if is_distributed():  # fitted by a process group: say so in the fitted state and the manifest
            import torch.distributed as dist

            self.world_size_ = int(dist.get_world_size())
        return result

    fit_under_thread_policy._embedkit_thread_policy = True
    return fit_under_thread_policy


def _table_shape(data):
    """(rows, columns) of a 2-D table (array, DataFrame, list of rows), else None; never copies."""
    shape = getattr(data, "shape", None)
    if shape is None and isinstance(data, (list, tuple)) and data and isinstance(data[0], (list, tuple)):
        shape = (len(data), len(data[0]))
    if shape is None or len(shape) != 2:
        return None
    return int(shape[0]), int(shape[1])


class Trainer:
    """Base class of the trainers; see the module docstring for the contract."""

    _parameter_constraints: dict = {}
    _param_aliases: dict = {}      # old name -> new name, accepted with a FutureWarning
    _module_params: tuple = ()     # constructor parameters holding objects JSON cannot hold

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if callable(fit) and not getattr(fit, "_embedkit_thread_policy", False):
            cls.fit = _with_thread_policy(fit)

    def _work_per_step(self, args: tuple, kwargs: dict) -> int | None:
        """Multiply-adds of one optimiser step, estimated from ``fit``'s arguments before it runs
        (None: unknown, and the torch thread count is left as it is).

        The default knows MLPs over a feature table (trainers with ``batch_size`` and ``hidden``
        parameters): ``batch_size`` rows through ``n_features -> *hidden -> dim``, or through a
        custom ``encoder`` module (its parameter count per row). Trainers that size their own
        threads (Word2Vec/Node2Vec ``workers``, MatrixFactorization) get None."""
        params = self.__dict__
        if "batch_size" not in params or "hidden" not in params:
            return None
        shape = _table_shape(args[0] if args else kwargs.get("X"))
        if shape is None:
            return None
        rows = min(shape[0], int(params["batch_size"]))
        encoder = params.get("encoder")
        if encoder is not None and hasattr(encoder, "parameters"):
            return rows * sum(int(p.numel()) for p in encoder.parameters())
        hidden = params["hidden"]
        widths = [shape[1], *([hidden] if isinstance(hidden, int) else list(hidden)), int(params.get("dim") or 1)]
        return rows * sum(a * b for a, b in zip(widths[:-1], widths[1:]))

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
        except KeyError:
            raise StoreError(f"{source}: not a saved embedkit model (an .npz without the model's config); load "
                             f"the file that {cls.__name__}.save wrote") from None
        except ValueError as exc:
            raise StoreError(f"{source}: not a saved embedkit model (its config is not JSON: {exc}); write the "
                             f"model again with {cls.__name__}.save") from None
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

    def save(self, path, store=None, *, overwrite: bool = False, kind: str = "flat") -> Path:
        """Save the fitted model; returns where it went. One rule decides where:

        * a plain **name** (a ``str`` without ``/`` and not ending in ``.npz``, e.g. ``"plays"``):
          a store entry, as :meth:`to_store` writes it (the vectors indexed, the model, the trainer's
          name and loss history: ``embedkit query/plot --loss/export NAME`` read it), in ``store``
          (None: ``$EMBEDKIT_STORE`` or ``./indexes``); an existing entry is replaced only with
          ``overwrite=True``. ``kind`` is the index kind of the entry.
        * anything else (a ``pathlib.Path``, a ``str`` with ``/`` or ending in ``.npz``): one
          ``.npz`` file (``.npz`` added when missing), written atomically, replacing an old one.

        :meth:`load` takes the same argument back.
        """
        from ..distributed import main_writes

        if _is_store_name(path):
            return main_writes(self._save_to_store, path, store, overwrite=overwrite, kind=kind,
                               what=f"the store entry {path!r}")
        if store is not None:
            raise InputError(f"save({str(path)!r}, store): a store entry takes a name (letters, digits, '_', '-', "
                             f"'.'), not a file path; drop the store to write the file {str(path)!r}")
        return main_writes(self._save_file, path, what=f"the file {str(path)!r}")

    def _save_file(self, path) -> Path:
        from .._io import atomic_write_bytes

        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        buf = io.BytesIO()
        np.savez(buf, **self.to_arrays())
        atomic_write_bytes(path, buf.getvalue())
        log.info("saved the %s model to %s", type(self).__name__, path.resolve())
        return path

    def _save_to_store(self, name: str, store, *, overwrite: bool, kind: str) -> Path:
        self._check_fitted()
        store = _as_store(store)
        if not overwrite and store.exists(name):
            raise InputError(f"an index named {name!r} already exists in the store {store.root.resolve()}; pass "
                             f"overwrite=True to replace it, or save a file: model.save('{name}.npz')")
        out = self.to_store(name, store, kind=kind, overwrite=True)
        log.info("saved the %s model as %r in the store %s", type(self).__name__, name, store.root.resolve())
        return out

    @classmethod
    def load(cls, path, store=None, **params):
        """Load what :meth:`save` wrote: a name reads the store entry (``store`` None: the default
        store), anything else the ``.npz`` file; ``params`` override saved constructor parameters.

        A plain name found in no store but as a file (``NAME`` or ``NAME.npz``) loads the file.
        Raises StoreError for a missing, damaged or foreign model."""
        if _is_store_name(path):
            st = _as_store(store)
            if store is not None or st.exists(path) or not _file_of(Path(path)):
                if not st.exists(path):
                    raise StoreError(_missing_entry(path, st, also_file=store is None))
                return cls.from_store(path, st, **params)
        elif store is not None:
            raise InputError(f"load({str(path)!r}, store): a store entry takes a name, not a file path; "
                             "drop the store to read the file")
        path = _file_of(Path(path)) or Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: no such file (looked in {path.resolve().parent})")
        not_model = StoreError(f"{path}: not a saved {cls.__name__} (not an .npz model file, or a damaged one); "
                               f"load the file that {cls.__name__}.save wrote")
        if numpy_kind(path) not in ("npz", "unknown"):  # a .npy array, text, an empty file: refused unread
            raise not_model
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except OSError as exc:  # the file cannot be read (permissions, I/O): say so, not "not a model"
            raise StoreError(f"{path}: cannot read the file ({type(exc).__name__}: {exc.strerror or exc})") from None
        except Exception:  # zip or format damage
            raise not_model from None
        return cls.from_arrays(arrays, source=str(path), **params)

    # ------------------------------------------------------------------ the store
    def _index_content(self):
        """(keys, vectors, default metric) of the index ``to_store`` writes."""
        emb = self.embeddings_
        return emb.keys, emb.vectors, "cosine"

    def _index_payload(self):
        """Payload rows of the index ``to_store`` writes (one per key, in order), or None."""
        return None

    def _store_extras(self) -> dict:
        """Extras saved beside the index (name -> {array name: array}); the model by default."""
        return {"model": self.to_arrays()}

    def _store_meta(self) -> dict:
        return {}

    def _manifest_meta(self, meta: dict | None = None) -> dict:
        """The manifest meta ``to_store`` writes: trainer, parameters, loss history, ``_store_meta()``,
        ``world_size`` after a distributed fit, then the caller's ``meta``."""
        from ..index._persist import _finite

        info = _finite({"trainer": type(self).__name__, "params": self.json_params(),  # a NaN loss becomes None
                        "loss_history": self._loss_history(), **self._store_meta()})
        if int(self.__dict__.get("world_size_", 1)) > 1:
            info["world_size"] = int(self.world_size_)
        return {**info, **(meta or {})}

    def to_store(self, name: str, store=None, *, metric: str | None = None, kind: str = "flat",
                 overwrite: bool = False, meta: dict | None = None, show_progress: bool = False) -> Path:
        """Write the fitted result into a :class:`~embedkit.Store` as ``name``: an index of its
        vectors, the model as the extra ``model``, and a manifest whose meta names the trainer,
        its parameters and its loss history (and ``world_size`` after a distributed fit). Returns
        the directory; under a process group, rank 0 alone writes and the other ranks return None.
        """
        from ..distributed import main_writes

        self._check_fitted()
        return main_writes(self._write_store, name, store, metric=metric, kind=kind, overwrite=overwrite, meta=meta,
                           show_progress=show_progress, what=f"the store entry {name!r}")

    def _write_store(self, name, store, *, metric, kind, overwrite, meta, show_progress) -> Path:
        from ..index import VectorIndex
        from ..index._persist import check_meta

        store = _as_store(store)
        store.check_save_name(name)  # name and meta refused before the index is built, not after
        check_meta(meta or {})
        keys, vectors, default_metric = self._index_content()
        index = VectorIndex(vectors.shape[1], metric=metric or default_metric, kind=kind)
        payload = self._index_payload()
        if payload is None:
            index.add(keys, vectors, show_progress=show_progress)
        else:
            index.add(keys, vectors, payload=payload, show_progress=show_progress)
        return store.save(name, index, meta=self._manifest_meta(meta), extras=self._store_extras(), overwrite=overwrite)

    @classmethod
    def from_store(cls, name: str, store=None, **params):
        """The fitted model that :meth:`to_store` wrote as ``name``."""
        store = _as_store(store)
        if not store.exists(name):
            raise StoreError(_missing_entry(name, store, also_file=False))
        info = store.info(name)
        meta = info.get("meta") or {}
        if meta.get("trainer") != cls.__name__:
            raise StoreError(f"index {name!r} in {store.root.resolve()} was not written by {cls.__name__} "
                             f"(trainer: {meta.get('trainer', 'unknown')})")
        if "model" not in (info.get("extras") or []):
            raise StoreError(f"index {name!r} in {store.root.resolve()} holds vectors only, no {cls.__name__} model; "
                             "save it with model.to_store(name)")
        arrays = store.load_extra(name, "model")  # a missing or damaged model file says so, with the fix
        return cls.from_arrays(arrays, source=f"{store.root}/{name}", **params)


def load_from_store(name: str, store=None, **params):
    """The fitted trainer saved as ``name``, whatever its class (read from its manifest)."""
    import importlib

    from . import TRAINERS

    store = _as_store(store)
    if not store.exists(name):
        raise StoreError(_missing_entry(name, store, also_file=False))
    trainer = (store.info(name).get("meta") or {}).get("trainer")
    module = TRAINERS.get(trainer)
    cls = getattr(importlib.import_module(module), trainer) if module else None
    if cls is None:
        raise StoreError(f"index {name!r} in {store.root.resolve()} holds no trainer's model (trainer: {trainer or 'none'})")
    return cls.from_store(name, store, **params)
