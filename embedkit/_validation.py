"""Parameter checks with scikit-learn style one-line messages.

Example: "The 'window' parameter of Word2Vec must be an int in the range [1, inf). Got 0 instead."
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .errors import InputError


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    left = "(" if (low is None or low_open) else "["
    right = ")" if (high is None or high_open) else "]"
    return f"{left}{lo}, {hi}{right}"


def check_int(owner: str, name: str, value: Any, low=None, high=None) -> int:
    """Return ``value`` as int or raise InputError naming the parameter and its range."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    raise InputError(
        f"The '{name}' parameter of {owner} must be an int in the range "
        f"{_range_text(low, high, False, False)}. Got {value!r} instead."
    )


def check_float(owner: str, name: str, value: Any, low=None, high=None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as float or raise InputError naming the parameter and its range."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)
        if low is not None and (v < low or (low_open and v == low)):
            ok = False
        if high is not None and (v > high or (high_open and v == high)):
            ok = False
    if ok:
        return float(value)
    raise InputError(
        f"The '{name}' parameter of {owner} must be a float in the range "
        f"{_range_text(low, high, low_open, high_open)}. Got {value!r} instead."
    )


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise InputError listing them."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise InputError(
        f"The '{name}' parameter of {owner} must be one of {listed}. Got {value!r} instead."
    )


def check_bool(owner: str, name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise InputError(f"The '{name}' parameter of {owner} must be a bool. Got {value!r} instead.")


def check_seed(owner: str, value: Any) -> int:
    return check_int(owner, "seed", value, 0, 2**32 - 1)
