"""What the feature-table trainers (SiameseEncoder, AutoEncoder) share.

MLP construction, learned input standardisation, device-resident tables, the epoch loop with
progress bar and callback, batched inference, and the model as plain arrays (no pickle): the
scaler, every tensor of the state dicts and the training rows' vectors, saved through the
trainer contract (:class:`embedkit.trainers.base.Trainer`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ... import distributed as ek_dist
from ..._arrays import as_keys
from ..._device import resolve_device
from ..._validation import check_value
from ...data.features import as_matrix, row_keys
from ...embeddings import Embeddings
from ...errors import InputError, NotFittedError, StoreError
from ..base import _CONFIG, MODEL_FORMAT, Trainer
from . import _dist
from ._dist import broadcast_modules, no_loss, rank_mean, rank_part, rank_sum, shared_randperm  # noqa: F401 (for the models)

log = logging.getLogger(__name__)

FORMAT_V1 = "embedkit.encoder/1"  # the first format (before the shared trainer contract), still read
_STATE = "state:"


def hidden_widths(value) -> tuple[int, ...]:
    """``hidden`` (validated: an int or a tuple/list of ints >= 1) as a tuple; () = one linear layer."""
    if isinstance(value, (int, np.integer)):
        value = (value,)
    return tuple(int(v) for v in value)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Standardizer:
    """Per-column z-scores learned in fit and stored with the model.

    Constant columns keep scale 1 so they map to 0 rather than to inf; ``enabled=False`` is the identity.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)

    @classmethod
    def fit(cls, X: np.ndarray, enabled: bool = True) -> "Standardizer":
        d = X.shape[1]
        if not enabled:
            return cls(np.zeros(d, np.float32), np.ones(d, np.float32))
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        std[std < 1e-8 * max(1.0, float(np.abs(mean).max()))] = 1.0
        return cls(mean, std)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale).astype(np.float32, copy=False)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return (Z * self.scale + self.mean).astype(np.float32, copy=False)


def to_table(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """The whole (standardised) table on the device once; batches are index gathers, not a DataLoader."""
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch's global RNG (weight init, dropout) for the block without disturbing the caller's."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def chunk_bounds(n: int, batch_size: int, min_rows: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of the consecutive chunks of ``batch_size`` that cover range(n). With ``min_rows=2``
    a last chunk of one row joins the chunk before it (a BatchNorm layer cannot train on one row); the
    other chunks are unchanged, and ``batch_size=1`` keeps chunks of one row (as asked)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows <= batch_size:
        _, stop = bounds.pop()
        bounds[-1] = (bounds[-1][0], stop)
    return bounds


def minibatches(n: int, batch_size: int, gen: torch.Generator, device: torch.device, min_rows: int = 1):
    """Index tensors covering a random permutation of range(n) in chunks of ``batch_size``
    (``min_rows=2``: no last chunk of one row, see :func:`chunk_bounds`).

    Under a process group: rank 0's permutation, and this rank's part of each chunk
    (:func:`~embedkit.trainers.encoders._dist.rank_part`), the same number of chunks on every rank."""
    perm = shared_randperm(n, gen, device)  # torch.randperm in a single process
    for start, stop in chunk_bounds(n, batch_size, min_rows):
        yield rank_part(perm[start:stop])  # the chunk itself in a single process


def run_epochs(owner: str, epochs: int, one_epoch, show_progress: bool, callback):
    """Call ``one_epoch(epoch) -> mean loss`` for epoch = 1..epochs with a tqdm bar, then
    ``callback(epoch, loss)`` (epochs count from 1, as everywhere in embedkit).

    Raises InputError when the loss stops being finite (the usual cure is a lower learning rate).

    Under a process group (see :mod:`._dist`): gradients are averaged over the ranks before each
    optimiser step taken inside ``one_epoch``, the epoch loss is the mean over the ranks (the same
    history on every rank), only rank 0 shows the bar, and ``comm_bytes_`` is set on the model.
    """
    from tqdm.auto import tqdm

    from ... import distributed as ek_dist

    grads = _dist.GradAverage()
    bar = tqdm(range(1, epochs + 1), desc=owner, unit="epoch", disable=not show_progress or not ek_dist.is_main(),
               leave=False)
    try:
        with grads:
            return _epochs(owner, bar, one_epoch, callback, grads)
    finally:  # also when a callback stops training early by raising
        bar.close()
        _dist.record_comm(owner, grads)


def _epochs(owner: str, bar, one_epoch, callback, grads) -> list[float]:
    history: list[float] = []
    for epoch in bar:
        grads.active = True
        try:
            loss = float(one_epoch(epoch))
        except ValueError as exc:  # torch's BatchNorm on a one-row step (batch_size=1, or one row in all)
            if isinstance(exc, InputError) or "more than 1 value per channel" not in str(exc):
                raise
            raise InputError(f"{owner}: a BatchNorm layer of the module cannot train on steps of one row; set "
                             "batch_size >= 2 and give at least 2 rows (or use nn.LayerNorm)") from None
        finally:
            grads.active = False
        loss = rank_mean(loss)
        if not math.isfinite(loss):
            bar.close()
            raise InputError(f"{owner}: the loss became {loss} in epoch {epoch}; lower 'lr' "
                             "or check the features for extreme values")
        history.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        log.debug("%s epoch %d loss %.6f", owner, epoch, loss)
        if callback is not None:
            callback(epoch, loss)
    bar.close()
    return history


@torch.no_grad()
def apply_in_batches(fn, X: torch.Tensor, batch_size: int = 8192) -> np.ndarray:
    """``fn`` over the rows of ``X`` in chunks, gathered as one float32 numpy array."""
    parts = [fn(X[i:i + batch_size]).float().cpu() for i in range(0, X.shape[0], batch_size)]
    return torch.cat(parts).numpy()


def check_encoder_output(owner: str, module: nn.Module, X: torch.Tensor, dim: int | None, *, vae: bool = False) -> int:
    """Fail early, in one line, when a user-supplied encoder does not map (n, d) rows to one (n, dim) tensor;
    returns its width. ``dim`` None: any width (the AutoEncoder takes the code size from the encoder); ``vae``:
    an even width (the mean and log-variance of each code coordinate)."""
    try:
        with torch.no_grad():
            was = module.training
            module.eval()
            out = module(X[:2])
            module.train(was)
    except Exception as exc:  # shape mismatch inside the user's module
        raise InputError(f"{owner}: the encoder module fails on input of shape {tuple(X[:2].shape)} "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); it must take (batch, "
                         f"{X.shape[1]}) rows, e.g. start with nn.Unflatten(1, (1, H, W)) for images") from None
    check_module_output(owner, "encoder", out, len(X[:2]))
    width = int(out.shape[1])
    if vae and width % 2:
        raise InputError(f"{owner}: with variant='vae' the encoder must return an even width, 2 * dim (the mean and "
                         f"the log-variance of each code coordinate); it returns {width} columns: end it with a "
                         f"layer of {width + 1} outputs")
    if dim is not None and width != dim:
        raise InputError(f"{owner}: the encoder returns {width} columns but dim={dim}; end it with a layer of "
                         f"{dim} outputs or set dim={width}")
    return width


def dry_run_rows(arr: np.ndarray, scaler, device, owner: str) -> torch.Tensor:
    """Two rows of ``arr``, scaled as the fit will scale them (float32, on the fit's device), to try custom modules
    on before a fit starts, so that a module that cannot run fails while the previous fit is still in place."""
    rows = scaler.transform(arr[:2]) if scaler is not None else arr[:2]
    return torch.as_tensor(np.ascontiguousarray(rows, dtype=np.float32), device=resolve_device(device, owner))


def check_module_output(owner: str, what: str, out, rows: int) -> None:
    """A custom module's output for ``rows`` rows must be one 2-D tensor of ``rows`` rows (one line otherwise)."""
    if not isinstance(out, torch.Tensor):
        raise InputError(f"{owner}: the {what} module returns a {type(out).__name__}, not one tensor; it must return "
                         "one (rows, dim) tensor (e.g. wrap an nn.LSTM or nn.GRU in a module that returns its last "
                         "hidden state, as in examples/recurrent_autoencoder_example.py)")
    if out.ndim != 2 or out.shape[0] != rows:
        raise InputError(f"{owner}: the {what} module returns shape {tuple(out.shape)} for {rows} rows; it must "
                         "return a 2-D (rows, dim) tensor, one row per input row (e.g. end it with nn.Flatten())")


# --------------------------------------------------------------------------- the model as arrays
def state_arrays(modules: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """Every state-dict tensor of ``modules`` as ``{"state:<module>.<tensor>": array}``."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, module in modules.items():
        for name, tensor in module.state_dict().items():
            arrays[f"{_STATE}{prefix}.{name}"] = tensor.detach().cpu().numpy()
    return arrays


def module_states(arrays) -> dict[str, dict[str, torch.Tensor]]:
    """Inverse of :func:`state_arrays`: ``{module: state dict}``."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key in arrays:
        if key.startswith(_STATE):
            prefix, name = key[len(_STATE):].split(".", 1)
            states.setdefault(prefix, {})[name] = torch.from_numpy(np.array(arrays[key]))
    return states


def load_state(module: nn.Module, state: dict, source: str, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise StoreError(f"{source}: the saved {what} weights do not fit this module "
                         f"({' '.join(str(exc).split())[:200]})") from None


def upgrade_v1(arrays: dict) -> dict:
    """Arrays written in the first encoder format ("embedkit.encoder/1": config with the class,
    params, n_features, modules_required and loss history at the top level) in today's model
    format; other arrays are returned unchanged. The weights and scaler keep their names."""
    try:
        config = json.loads(str(np.asarray(arrays[_CONFIG])))
    except (KeyError, ValueError):
        return arrays
    if not isinstance(config, dict) or config.get("format") != FORMAT_V1:
        return arrays
    new = {"format": MODEL_FORMAT, "class": config.get("class"), "params": config.get("params", {}),
           "loss_history": config.get("loss_history", []),
           "state": {"n_features": config.get("n_features"),
                     "modules_required": config.get("modules_required", [])}}
    return {**arrays, _CONFIG: np.array(json.dumps(new))}


def fit_keys(owner: str, keys, n_rows: int, X=None) -> list[str]:
    """The row keys of a fit, checked: ``keys`` must be strings, as ``ek.Embeddings`` keys are (an int is never
    converted silently: README, "Keys are strings, always"); without ``keys``, the pandas index of ``X`` or
    "0".."n-1" (:func:`~embedkit.data.features.row_keys`). One-line InputError otherwise."""
    if keys is not None and not isinstance(keys, (str, bytes)):
        try:
            keys = list(keys)
        except TypeError:
            raise InputError(f"{owner}.fit: keys must be a sequence of strings, one per row; "
                             f"got {type(keys).__name__}") from None
        for i, k in enumerate(keys):
            if not isinstance(k, str):
                fix = "k.decode()" if isinstance(k, bytes) else "str(k)"
                raise InputError(f"{owner}.fit: keys must be strings, as ek.Embeddings keys are; key #{i} is "
                                 f"{type(k).__name__} {k.item() if isinstance(k, np.generic) else k!r}: "
                                 f"pass [{fix} for k in keys]")
    return as_keys(row_keys(keys, n_rows, X))


def same_input(values: np.ndarray, what: str) -> None:
    """Distributed: raise the same one-line error on every rank if ``values`` (the feature table, labels
    or pairs) differ between ranks, before any collective of a different size can abort in the backend
    (:func:`embedkit.distributed.same_data_on_all_ranks`). Nothing happens in one process."""
    ek_dist.same_data_on_all_ranks(what, np.asarray(values))


# --------------------------------------------------------------------------- shared trainer base
_FITTED = ("model_", "scaler_", "n_features_", "device_", "embeddings_", "loss_history_")


class TableModel(Trainer):
    """Base of the trainers that map feature rows through torch modules.

    Subclasses implement ``_build_modules(n_features)`` (sets the modules from the
    hyper-parameters), ``_saved_modules()`` (name -> module to save) and ``_embed(table)``
    (standardised rows on the device -> latent vectors). Fitted attributes (``model_``,
    ``scaler_``, ``n_features_``, ``device_``, ``embeddings_``, ``loss_history_``) exist only
    after ``fit`` or ``load``; before, reading one raises NotFittedError.
    """

    _fitted_names: tuple[str, ...] = _FITTED

    def __getattr__(self, name: str):
        # only called for attributes that do not exist: a fitted one read before fit
        if name in type(self)._fitted_names:
            if name == "embeddings_" and "model_" in self.__dict__:
                raise NotFittedError(f"this {type(self).__name__} was loaded from a file written without the "
                                     "training rows' vectors; call encode(X) for vectors")
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")
        return super().__getattr__(name)  # aliases, and fitted properties' NotFittedError (margin_)

    # -- used by subclasses
    def _is_fitted(self) -> bool:
        return "model_" in self.__dict__

    def _forget_fit(self) -> None:
        """Drop every fitted attribute (a new fit starts from nothing, not from half of the previous one)."""
        for name in (*type(self)._fitted_names, *_dist.COMM_ATTRS, "world_size_"):
            self.__dict__.pop(name, None)

    def _train_keeping_fit(self, train):
        """``train()``, the fit after its inputs were checked; if it raises anything (an error inside training,
        a callback that raises, KeyboardInterrupt), the model is put back as it was before the fit: the
        previous fit, unchanged, or unfitted. Safe because a fit replaces its fitted attributes (new modules,
        scaler, vectors) and never changes them in place (only the record of ignored-parameter warnings
        already given is kept). The cost: a refit holds the previous fit in memory until it succeeds (its
        training rows, vectors and modules: about the size of one fit more)."""
        before = dict(self.__dict__)
        try:
            return train()
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _check_rows(self, X, keys) -> tuple[np.ndarray, list[str]]:
        """Bad rows, keys or device fail here, before the previous fit is dropped (bad input on a refit keeps
        the fitted model); distributed, every rank must hold the same rows. Returns the rows and the checked
        row keys, for _start_fit."""
        ek_dist.setup(resolve_device(self.device, type(self).__name__))  # joins the group under torchrun, else no-op
        # a rank whose rows or keys fail raises its error; every other rank says which rank failed (none waits)
        arr = ek_dist.checked_on_all_ranks(lambda: as_matrix(X), "its rows X")
        same_input(arr, "the feature table X")
        names = ek_dist.checked_on_all_ranks(lambda: fit_keys(type(self).__name__, keys, arr.shape[0], X),
                                             "its row keys")
        return arr, names

    def _start_fit(self, X, keys, checked: np.ndarray | None = None, scaler: Standardizer | None = None):
        """The fit preamble both encoders share: drop the previous fit, check the rows, choose the device,
        learn the scaler; returns (rows as float32, row keys, standardised table on the device). ``checked``:
        the rows as the caller already parsed and compared across ranks (not done again); ``scaler``: the one
        already learned from them (for trying custom modules), not learned again."""
        self._forget_fit()
        arr = as_matrix(X) if checked is None else checked
        names = keys if checked is not None else row_keys(keys, arr.shape[0], X)  # checked: keys are fit_keys'
        device = resolve_device(self.device, type(self).__name__)
        _dist.begin_fit(self, device)  # joins the process group under torchrun; a no-op in one process
        if checked is None:
            same_input(arr, "the feature table X")
        scaler = self._fit_scaler(arr) if scaler is None else scaler
        self.device_, self.scaler_, self.n_features_ = device, scaler, arr.shape[1]
        return arr, names, to_table(scaler.transform(arr), device)

    def _try_modules(self, arr: np.ndarray, check) -> Standardizer:
        """Custom modules that cannot run fail before a refit drops the previous fit: ``check(rows, copy_of)``
        tries copies (``copy_of(module)``) on two rows scaled as in the fit, under the fit's seed (a lazy
        module's first call draws its weights: not from the caller's random state). Returns the fit's own
        scaler, learned once."""
        import copy

        scaler = self._fit_scaler(arr)
        rows = dry_run_rows(arr, scaler, self.device, type(self).__name__)
        with seeded(self.seed, rows.device):
            check(rows, lambda module: copy.deepcopy(module).to(rows.device))
        return scaler

    def _fit_scaler(self, arr: np.ndarray) -> Standardizer:
        """The input scaling learned in fit (per-column z-scores unless ``standardize=False``)."""
        return Standardizer.fit(arr, self.standardize)

    def _prepare(self, X, what: str = "X") -> torch.Tensor:
        """Validate rows against the fitted feature count, standardise, and move them to the device."""
        self._check_fitted()
        arr = as_matrix(X, what=what, n_features=self.n_features_)
        return to_table(self.scaler_.transform(arr), self.device_)

    def encode(self, X) -> np.ndarray:
        """Latent vectors (n, dim) float32 for rows ``X`` (rows never seen in fit are fine)."""
        table = self._prepare(X)
        for m in self._saved_modules().values():
            m.eval()
        return apply_in_batches(self._embed, table)

    # -- the model as arrays (the base class gives to_arrays/from_arrays, save/load, to_store/from_store)
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"scaler.mean": self.scaler_.mean, "scaler.scale": self.scaler_.scale}
        emb = self.__dict__.get("embeddings_")
        if emb is not None:  # the training rows' vectors (absent in a model read from the first format)
            arrays["keys"] = np.array(emb.keys, dtype=str)
            arrays["vectors"] = emb.vectors
        arrays.update(state_arrays(self._saved_modules()))
        return arrays

    def _state_config(self) -> dict:
        return {"n_features": int(self.n_features_),
                "modules_required": [k for k in self._module_params if getattr(self, k, None) is not None]}

    def _load_state(self, arrays: dict, config: dict) -> None:
        source = config.get("_source", "arrays")
        self.device_ = resolve_device(self.device, type(self).__name__)
        self.scaler_ = Standardizer(arrays["scaler.mean"], arrays["scaler.scale"])
        self.n_features_ = int(config["n_features"])
        with seeded(0, self.device_):
            self._build_modules(self.n_features_)
        states = module_states(arrays)
        for prefix, module in self._saved_modules().items():
            load_state(module, states.get(prefix, {}), source, prefix)
            module.to(self.device_).eval()
        if "keys" in arrays and "vectors" in arrays:
            self.embeddings_ = Embeddings(np.asarray(arrays["keys"]).tolist(), arrays["vectors"])

    # -- parameters: checked when set and when overridden on load, as fit checks them
    def set_params(self, **params):
        """Set constructor parameters (checked now, like fit checks them: InputError naming the parameter and
        its allowed values); returns self."""
        self._check_overrides(params, self.get_params())
        return super().set_params(**params)

    @classmethod
    def _check_overrides(cls, params: dict, current: dict, where: str = "") -> None:
        """Unknown names and values outside ``_parameter_constraints`` (``current``: the other parameters)."""
        known = cls._param_names()
        unknown = [k for k in params if k not in known and k not in cls._param_aliases]
        if unknown:
            raise InputError(f"{where}{cls.__name__} has no parameter {unknown[0]!r}; "
                             f"valid parameters: {', '.join(sorted(known))}")
        merged = {**current, **params}
        for name, value in params.items():
            if name in cls._parameter_constraints:
                check_value(cls.__name__, name, value, cls._parameter_constraints[name], merged)

    @classmethod
    def _check_load_overrides(cls, params: dict, saved: dict, source: str) -> None:
        """Refuse overrides that the saved weights cannot honour (none here)."""

    def _after_load(self, changed: set) -> None:
        """Called by from_arrays with the parameters given to load that differ from the saved ones."""

    # -- reading and writing files
    @classmethod
    def _read_config(cls, arrays, source: str) -> dict:
        damaged = StoreError(f"{source}: not a saved {cls.__name__}: its config is damaged (write the model again "
                             f"with {cls.__name__}.save)")
        try:
            raw = json.loads(str(np.asarray(arrays[_CONFIG])))
        except (KeyError, ValueError):
            raw = {}  # the base class says what is missing
        if not isinstance(raw, dict):
            raise damaged
        config = super()._read_config(arrays, source)
        if not all(isinstance(config.get(k) or {}, dict) for k in ("params", "state")) or \
                not isinstance(config.get("loss_history") or [], list):
            raise damaged
        return config

    def save(self, path, store=None, *, overwrite: bool = False, kind: str = "flat") -> Path:
        from ..base import _is_store_name

        if store is None and isinstance(path, (str, os.PathLike)) and not _is_store_name(path):
            text = os.fspath(path)
            p = Path(text)
            if text.endswith(tuple(c for c in ("/", os.sep, os.altsep) if c)) or p.is_dir() \
                    or p.with_name(p.name + ".npz").is_dir():
                raise InputError(f"{type(self).__name__}.save: {text!r} is a directory; give a file name, "
                                 f"e.g. {str(p / 'model.npz')!r}")
        return super().save(path, store, overwrite=overwrite, kind=kind)

    save.__doc__ = Trainer.save.__doc__

    @classmethod
    def from_arrays(cls, arrays, *, source: str = "arrays", **params):
        """Rebuild a fitted model from :meth:`to_arrays` output (also reads the first encoder
        format). ``params`` override saved parameters (checked like fit checks them); a model trained
        with a custom module needs one of the same architecture (``encoder=module``); ``device=`` places
        it (default: the device it was trained with)."""
        names = arrays.keys() if hasattr(arrays, "keys") else arrays.files
        arrays = upgrade_v1({k: arrays[k] for k in names})
        config = cls._read_config(arrays, source)
        state = config.get("state") or {}
        saved = config.get("params") or {}
        changed = {k for k, v in params.items() if k not in saved or saved[k] != v}  # for _after_load
        known = cls._param_names()
        cls._check_overrides(params, {**cls._defaults(), **{k: v for k, v in saved.items() if k in known}},
                             f"{source}: ")
        cls._check_load_overrides(params, saved, source)
        missing = [m for m in state.get("modules_required", []) if params.get(m) is None]
        if missing:
            raise InputError(f"{source}: this {cls.__name__} was trained with a custom {missing[0]} module; "
                             f"pass one of the same architecture: {cls.__name__}.load(path, {missing[0]}=module)")
        if isinstance(saved.get("hidden"), list):  # JSON has no tuples
            params.setdefault("hidden", tuple(saved["hidden"]))
        device = params.get("device", saved.get("device", "auto"))
        try:
            resolve_device(device, cls.__name__)
        except InputError:
            raise InputError(f"{source}: this {cls.__name__} was saved with device={device!r}, which is not "
                             f"available here; load it with device='cpu' or device='auto'") from None
        # the source travels to _load_state for its messages (the arrays are a private copy)
        arrays[_CONFIG] = np.array(json.dumps({**config, "state": {**state, "_source": source}}))
        try:
            model = super().from_arrays(arrays, source=source, **params)
        except (TypeError, AttributeError) as exc:  # a config value of the wrong type
            raise StoreError(f"{source}: the saved {cls.__name__} is incomplete or damaged "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        model._after_load(changed)
        return model

    # -- to implement
    def _build_modules(self, n_features: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _saved_modules(self) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, table: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
