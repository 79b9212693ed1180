"""Parameter checks: one validator and declarative constraints (in the spirit of scikit-learn's
``_parameter_constraints``), with one-line messages that name the owner, the parameter, the
allowed values and what was given:

    "The 'window' parameter of Word2Vec must be an int in the range [1, 1000]. Got 0 instead."

A trainer declares ``_parameter_constraints = {"window": [Interval(int, 1, 1000)], ...}``: a
value is valid when any constraint of its list accepts it. A bound may name another parameter
(``Interval(float, 0.0, "lr")``: at most the value of ``lr``). The shared vocabulary (``DIM``,
``EPOCHS``, ``SEED``, ``LR``, ``MIN_LR``, ``BATCH_SIZE``, ``WORKERS``, ``DEVICE``, ``WINDOW``,
``NEGATIVE``) is defined here once so that every trainer allows the same range for the same name.
The ``check_*`` helpers are the one-off form of the same checks, for function arguments.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from .errors import InputError

__all__ = ["Interval", "Options", "Bool", "NoneOk", "InstanceOf", "IntTuple", "Device",
           "validate_params", "check_value", "check_int", "check_float", "check_choice", "check_bool",
           "check_seed", "DIM", "EPOCHS", "SEED", "LR", "MIN_LR", "BATCH_SIZE", "WORKERS", "DEVICE",
           "WINDOW", "NEGATIVE"]


class Constraint:
    """One rule a parameter's value may satisfy."""

    def accepts(self, value: Any, params: dict) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, params: dict) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _bound(b, params: dict):
    if isinstance(b, str):  # the name of another parameter
        v = params.get(b)
        return v if isinstance(v, numbers.Real) and not isinstance(v, bool) else None
    return b


def shown(value, limit: int = 60) -> str:
    """``repr`` of a value for a one-line message (numpy scalars as plain Python values), cut to ``limit``."""
    try:
        text = repr(value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value)
    except Exception:  # e.g. a tensor without data (meta device)
        text = object.__repr__(value)
    text = " ".join(text.split())  # arrays and modules print over several lines
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fmt(x) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) >= 1e6:
        return f"{x:.0e}"
    return repr(x)


class Interval(Constraint):
    """An int or a finite float (``kind`` int or float; float also takes ints) in a range.

    ``closed``: "both" (default), "left", "right" or "neither". ``None`` bounds are infinite;
    a string bound is the value of that parameter (e.g. ``min_lr`` at most ``lr``).
    """

    def __init__(self, kind: type, low=None, high=None, closed: str = "both"):
        if kind not in (int, float) or closed not in ("both", "left", "right", "neither"):
            raise ValueError("Interval(kind=int|float, low, high, closed='both'|'left'|'right'|'neither')")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value, params) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not (isinstance(value, numbers.Real) and math.isfinite(value)):
            return False
        lo, hi = _bound(self.low, params), _bound(self.high, params)
        if lo is not None and (value < lo or (value == lo and self.closed in ("right", "neither"))):
            return False
        if hi is not None and (value > hi or (value == hi and self.closed in ("left", "neither"))):
            return False
        return True

    def describe(self, params) -> str:
        lo, hi = _bound(self.low, params), _bound(self.high, params)
        lo_t = "-inf" if lo is None else _fmt(lo)
        hi_t = "inf" if hi is None else _fmt(hi)
        if isinstance(self.low, str):
            lo_t = f"{self.low}={lo_t}"
        if isinstance(self.high, str):
            hi_t = f"{self.high}={hi_t}"
        left = "[" if lo is not None and self.closed in ("both", "left") else "("
        right = "]" if hi is not None and self.closed in ("both", "right") else ")"
        what = "an int" if self.kind is int else "a float"
        return f"{what} in the range {left}{lo_t}, {hi_t}{right}"


class Options(Constraint):
    """One of a fixed set of strings."""

    def __init__(self, *choices: str):
        self.choices = tuple(choices)

    def accepts(self, value, params) -> bool:
        return isinstance(value, str) and value in self.choices

    def describe(self, params) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


class Bool(Constraint):
    def accepts(self, value, params) -> bool:
        return isinstance(value, bool)

    def describe(self, params) -> str:
        return "a bool"


class NoneOk(Constraint):
    """``None`` (usually: "choose automatically")."""

    def accepts(self, value, params) -> bool:
        return value is None

    def describe(self, params) -> str:
        return "None"


class InstanceOf(Constraint):
    """An instance of a class given by import path ("torch.nn.Module"), imported only when checked."""

    def __init__(self, path: str, text: str | None = None):
        self.path, self.text = path, text

    def accepts(self, value, params) -> bool:
        import importlib

        module, _, name = self.path.rpartition(".")
        return isinstance(value, getattr(importlib.import_module(module), name))

    def describe(self, params) -> str:
        return self.text or f"a {self.path}"


class IntTuple(Constraint):
    """A tuple or list of ints >= ``low`` (or one such int): e.g. hidden layer widths."""

    def __init__(self, low: int = 1, text: str | None = None):
        self.low, self.text = low, text

    def accepts(self, value, params) -> bool:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = (value,)
        return isinstance(value, (tuple, list)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= self.low for v in value)

    def describe(self, params) -> str:
        return self.text or f"a tuple of ints >= {self.low}"


class Device(Constraint):
    """"auto", "cpu", "cuda", "cuda:N" or a torch.device (whether CUDA is present is checked in fit)."""

    def accepts(self, value, params) -> bool:
        if isinstance(value, str):
            if value in ("auto", "cpu", "cuda"):
                return True
            head, _, num = value.partition(":")
            return head == "cuda" and num.isdigit()
        return type(value).__name__ == "device" and type(value).__module__.startswith("torch")

    def describe(self, params) -> str:
        return "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"


# --------------------------------------------------------------------------- shared vocabulary
DIM = [Interval(int, 1, 10_000)]
EPOCHS = [Interval(int, 1, 100_000)]
SEED = [Interval(int, 0, 2**32 - 1)]
LR = [Interval(float, 0.0, 10.0, closed="right")]
MIN_LR = [Interval(float, 0.0, "lr")]
BATCH_SIZE = [Interval(int, 1, 1 << 24)]
WORKERS = [Interval(int, 1, 1024), NoneOk()]
DEVICE = [Device()]
WINDOW = [Interval(int, 1, 1_000)]     # skip-gram context window (Word2Vec, Node2Vec)
NEGATIVE = [Interval(int, 1, 1_000)]   # noise samples per positive pair (Word2Vec, Node2Vec)


def _message(owner: str, name: str, value, constraints, params) -> str:
    texts = [c.describe(params) for c in constraints]
    allowed = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]
    text = repr(value)  # (not shown(): these messages keep numpy's own repr)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"The '{name}' parameter of {owner} must be {allowed}. Got {text} instead."


def check_value(owner: str, name: str, value, constraints, params: dict | None = None):
    """Return ``value`` if one of ``constraints`` accepts it, else raise InputError (one line)."""
    params = params if params is not None else {}
    if any(c.accepts(value, params) for c in constraints):
        return value
    raise InputError(_message(owner, name, value, constraints, params))


def validate_params(owner: str, params: dict, constraints: dict) -> dict:
    """Check every entry of ``params`` against ``constraints[name]``; returns ``params``.

    A parameter without an entry in ``constraints`` is a programming error (a test checks that
    every constructor parameter of every trainer has one).
    """
    for name, value in params.items():
        if name not in constraints:
            raise KeyError(f"{owner}: no constraint declared for parameter {name!r}")
        check_value(owner, name, value, constraints[name], params)
    return params


# --------------------------------------------------------------------------- one-off checks
def check_int(owner: str, name: str, value: Any, low=None, high=None) -> int:
    """Return ``value`` as int or raise InputError naming the parameter and its range."""
    return int(check_value(owner, name, value, [Interval(int, low, high)]))


def check_float(owner: str, name: str, value: Any, low=None, high=None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as float or raise InputError naming the parameter and its range."""
    closed = {(False, False): "both", (False, True): "left", (True, False): "right", (True, True): "neither"}
    return float(check_value(owner, name, value, [Interval(float, low, high, closed[(low_open, high_open)])]))


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise InputError listing them."""
    return check_value(owner, name, value, [Options(*choices)])


def check_bool(owner: str, name: str, value: Any) -> bool:
    """``value`` as a bool (a numpy bool is one too); InputError for anything else ("no" is no False)."""
    return check_value(owner, name, bool(value) if isinstance(value, np.bool_) else value, [Bool()])


def check_seed(owner: str, value: Any) -> int:
    return int(check_value(owner, "seed", value, SEED))
