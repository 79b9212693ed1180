"""Choosing the torch device: "auto" takes CUDA when present, else CPU."""

from __future__ import annotations

import logging
import os

from .errors import InputError

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS / Windows


def resolve_device(device, owner: str = "embedkit"):
    """Return a ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device.

    Raises InputError for an unknown name, or for "cuda" when no CUDA device is present.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str) and (device == "cpu" or device.startswith("cuda")):
        try:
            dev = torch.device(device)
        except RuntimeError:
            dev = None
        if dev is None:
            raise InputError(f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda' or 'cuda:N'. "
                             f"Got {device!r} instead.")
    else:
        raise InputError(
            f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {device!r} instead."
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"{owner}: device={device!r} was asked for but no CUDA device is available; "
            "use device='cpu' or 'auto', or install a CUDA build of torch (see README, 'GPU')."
        )
    return dev
