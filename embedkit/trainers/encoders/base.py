"""What the feature-table trainers (SiameseEncoder, AutoEncoder) share.

MLP construction, learned input standardisation, device-resident tables, the epoch loop with
progress bar and callback, batched inference, and save/load as plain arrays (no pickle): every
tensor of the state dicts plus one JSON config string, in a single ``.npz``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..._device import resolve_device
from ..._io import atomic_write_bytes as _atomic_write_bytes
from ...data.features import as_matrix
from ...errors import InputError, NotFittedError, StoreError
from ..base import Trainer

log = logging.getLogger(__name__)

FORMAT = "embedkit.encoder/1"
_CONFIG = "__config__"
_STATE = "state:"


def check_hidden(owner: str, value) -> tuple[int, ...]:
    """``hidden`` layer widths as a tuple of positive ints (empty = a single linear layer)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value):
        raise InputError(f"The 'hidden' parameter of {owner} must be a tuple of ints >= 1 (layer widths), "
                         f"e.g. (256, 128). Got {value!r} instead.")
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


def minibatches(n: int, batch_size: int, gen: torch.Generator, device: torch.device):
    """Index tensors covering a random permutation of range(n) in chunks of ``batch_size``."""
    perm = torch.randperm(n, generator=gen, device=device)
    for start in range(0, n, batch_size):
        yield perm[start:start + batch_size]


def run_epochs(owner: str, epochs: int, one_epoch, show_progress: bool, callback):
    """Call ``one_epoch(epoch) -> mean loss`` ``epochs`` times with a tqdm bar and the callback.

    Raises InputError when the loss stops being finite (the usual cure is a lower learning rate).
    """
    from tqdm.auto import tqdm

    history: list[float] = []
    bar = tqdm(range(epochs), desc=owner, unit="epoch", disable=not show_progress, leave=False)
    for epoch in bar:
        loss = float(one_epoch(epoch))
        if not math.isfinite(loss):
            bar.close()
            raise InputError(f"{owner}: the loss became {loss} in epoch {epoch + 1}; lower 'lr' "
                             "or check the features for extreme values")
        history.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        log.debug("%s epoch %d loss %.6f", owner, epoch + 1, loss)
        if callback is not None:
            callback(epoch, loss)
    bar.close()
    return history


@torch.no_grad()
def apply_in_batches(fn, X: torch.Tensor, batch_size: int = 8192) -> np.ndarray:
    """``fn`` over the rows of ``X`` in chunks, gathered as one float32 numpy array."""
    parts = [fn(X[i:i + batch_size]).float().cpu() for i in range(0, X.shape[0], batch_size)]
    return torch.cat(parts).numpy()


def check_encoder_output(owner: str, module: nn.Module, X: torch.Tensor, dim: int) -> None:
    """Fail early, in one line, when a user-supplied encoder does not map (n, d) rows to (n, dim)."""
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
    if out.ndim != 2 or out.shape[1] != dim:
        raise InputError(f"{owner}: the encoder returns shape {tuple(out.shape)} for 2 rows but dim={dim}; "
                         f"end it with a layer of {dim} outputs or set dim={out.shape[-1]}")


# --------------------------------------------------------------------------- save / load
def pack(config: dict, modules: dict[str, nn.Module], scaler: Standardizer) -> dict[str, np.ndarray]:
    """The model as ``{name: array}``: the JSON config, the scaler and every state-dict tensor."""
    arrays: dict[str, np.ndarray] = {
        _CONFIG: np.array(json.dumps({"format": FORMAT, **config})),
        "scaler.mean": scaler.mean, "scaler.scale": scaler.scale,
    }
    for prefix, module in modules.items():
        for name, tensor in module.state_dict().items():
            arrays[f"{_STATE}{prefix}.{name}"] = tensor.detach().cpu().numpy()
    return arrays


def unpack(arrays, owner: str, source: str = "arrays") -> tuple[dict, dict[str, dict[str, torch.Tensor]], Standardizer]:
    """Inverse of :func:`pack`: (config, {module prefix: state dict}, scaler)."""
    try:
        config = json.loads(str(np.asarray(arrays[_CONFIG])))
        scaler = Standardizer(arrays["scaler.mean"], arrays["scaler.scale"])
    except (KeyError, ValueError) as exc:
        raise StoreError(f"{source}: not a saved embedkit encoder ({type(exc).__name__}: {exc})") from None
    if config.get("format") != FORMAT:
        raise StoreError(f"{source}: format {config.get('format')!r} is not {FORMAT!r}; "
                         "it was written by another embedkit version")
    if config.get("class") != owner:
        raise StoreError(f"{source}: holds a {config.get('class')}, not a {owner}; load it with ek.{config.get('class')}.load")
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key in arrays.keys() if hasattr(arrays, "keys") else arrays.files:
        if key.startswith(_STATE):
            prefix, name = key[len(_STATE):].split(".", 1)
            states.setdefault(prefix, {})[name] = torch.from_numpy(np.array(arrays[key]))
    return config, states, scaler


def load_state(module: nn.Module, state: dict, source: str, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise StoreError(f"{source}: the saved {what} weights do not fit this module "
                         f"({' '.join(str(exc).split())[:200]})") from None


def save_npz(path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` added when missing) atomically, without pickle."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_write_bytes(path, buf.getvalue())
    return path


def load_npz(path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # zip or format damage
        raise StoreError(f"{path}: cannot read the saved model ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- shared trainer base
class TableModel(Trainer):
    """Base of the trainers that map feature rows through torch modules.

    Subclasses implement ``_build_modules(n_features)`` (sets the modules from the
    hyper-parameters), ``_saved_modules()`` (name -> module to save) and ``_embed(table)``
    (standardised rows on the device -> latent vectors).
    """

    model_ = None
    scaler_: Standardizer | None = None
    n_features_: int | None = None
    device_ = None
    _module_params: tuple[str, ...] = ()  # constructor arguments holding modules (not saved as JSON)

    # -- used by subclasses
    def _require_model(self) -> None:
        if self.model_ is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")

    def _prepare(self, X, what: str = "X") -> torch.Tensor:
        """Validate rows against the fitted feature count, standardise, and move them to the device."""
        self._require_model()
        arr = as_matrix(X, what=what, n_features=self.n_features_)
        return to_table(self.scaler_.transform(arr), self.device_)

    def encode(self, X) -> np.ndarray:
        """Latent vectors (n, dim) float32 for rows ``X`` (rows never seen in fit are fine)."""
        table = self._prepare(X)
        for m in self._saved_modules().values():
            m.eval()
        return apply_in_batches(self._embed, table)

    # -- save / load
    def _config(self) -> dict:
        params = {k: v for k, v in self.json_params().items() if k not in self._module_params}
        return {"class": type(self).__name__, "params": params, "n_features": self.n_features_,
                "modules_required": [k for k in self._module_params if getattr(self, k, None) is not None],
                "loss_history": [float(x) for x in getattr(self, "loss_history_", []) or []]}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted model as ``{name: numpy array}`` (JSON config + weights + scaler), no pickle."""
        self._require_model()
        return pack(self._config(), self._saved_modules(), self.scaler_)

    def save(self, path) -> Path:
        """Save the fitted model to one ``.npz`` file (weights, scaler, JSON config; no pickle)."""
        return save_npz(path, self.to_arrays())

    @classmethod
    def from_arrays(cls, arrays, *, device="auto", source: str = "arrays", **modules):
        """Rebuild a model from :meth:`to_arrays` output; ``modules`` supplies custom torch modules."""
        config, states, scaler = unpack(arrays, cls.__name__, source)
        missing = [m for m in config.get("modules_required", []) if modules.get(m) is None]
        if missing:
            raise InputError(f"{source}: this {cls.__name__} was trained with a custom {missing[0]} module; "
                             f"pass one of the same architecture: {cls.__name__}.load(path, {missing[0]}=module)")
        obj = cls(**{**config["params"], "device": device, **modules})
        obj.device_ = resolve_device(obj.device, cls.__name__)
        obj.scaler_ = scaler
        obj.n_features_ = int(config["n_features"])
        obj.loss_history_ = list(config.get("loss_history", []))
        with seeded(0, obj.device_):
            obj._build_modules(obj.n_features_)
        for prefix, module in obj._saved_modules().items():
            load_state(module, states.get(prefix, {}), source, prefix)
            module.to(obj.device_).eval()
        return obj

    @classmethod
    def load(cls, path, *, device="auto", **modules):
        """Load what :meth:`save` wrote. Raises StoreError for a missing, damaged or foreign file."""
        return cls.from_arrays(load_npz(path), device=device, source=str(path), **modules)

    # -- to implement
    def _build_modules(self, n_features: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _saved_modules(self) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, table: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
