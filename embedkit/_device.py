"""Choosing the torch device ("auto" takes CUDA when present, else CPU) and the CPU thread policy.

Thread policy (see :func:`fit_threads`), for models small enough that OpenMP's fork/join costs
more than it saves:

* Importing this module (every trainer imports it before torch) sets ``OMP_WAIT_POLICY=PASSIVE``
  when the variable is unset and torch has not been imported yet. OpenMP reads it once, when the
  library loads, so it must be set before ``import torch``; with the default (spinning) policy,
  idle OpenMP threads burn the cores that other processes need, and a small model on a busy
  machine runs several times slower. Set ``OMP_WAIT_POLICY`` yourself (e.g. ``ACTIVE``) to keep
  your choice; child processes inherit the variable.
* Each ``fit`` of a trainer runs torch on one thread when its work per optimiser step is small
  (:data:`SMALL_WORK` multiply-adds), and restores the previous thread count afterwards.
  ``EMBEDKIT_NUM_THREADS=N`` fixes the count for every fit instead.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

from .errors import InputError

log = logging.getLogger(__name__)

# multiply-adds per optimiser step below which a fit runs torch on one thread
SMALL_WORK = 16_000_000
WAIT_POLICY_SET_BY_EMBEDKIT = False


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if it is unset and torch is not loaded yet; True if set now."""
    global WAIT_POLICY_SET_BY_EMBEDKIT
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    WAIT_POLICY_SET_BY_EMBEDKIT = True
    return True


prefer_passive_wait()


def _env_threads() -> int | None:
    raw = os.environ.get("EMBEDKIT_NUM_THREADS", "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"EMBEDKIT_NUM_THREADS must be a whole number >= 1; got {raw!r} (unset it for the default)")
    return n


def threads_for(work: int | None, current: int) -> int:
    """Torch threads for a fit whose optimiser step costs ``work`` multiply-adds (None: unknown).

    ``EMBEDKIT_NUM_THREADS`` wins; small work gets one thread; otherwise ``current`` is kept."""
    forced = _env_threads()
    if forced is not None:
        return forced
    if work is not None and work < SMALL_WORK:
        return 1
    return current


@contextmanager
def fit_threads(work: int | None, owner: str = "fit"):
    """Run the block with :func:`threads_for` torch threads; the previous count is restored after.

    Does nothing (and does not import torch) when torch is not loaded and nothing is forced."""
    if "torch" not in sys.modules and _env_threads() is None and (work is None or work >= SMALL_WORK):
        yield
        return
    import torch

    before = torch.get_num_threads()
    want = threads_for(work, before)
    if want == before:
        yield
        return
    log.debug("%s: torch on %d thread(s) (was %d; work per step %s)", owner, want, before, work)
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
