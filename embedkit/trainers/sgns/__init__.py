"""Skip-gram with negative sampling, shared by Word2Vec and Node2Vec.

``engine``: embedkit's own torch trainer (CPU and CUDA); ``gensim_backend``: the one adapter
to gensim's Word2Vec (CPU), used by both trainers. :func:`choose_backend` is the one rule
both trainers pick their backend and device by. Past one process (torchrun, ``--nproc``):
``distributed`` (sharding, periodic averaging of the replicas, the engine's hook) and
``dist_gensim`` (gensim trains each rank's shard between averages).
"""

from __future__ import annotations

from ...errors import InputError

_WORKERS_ON_CUDA = "by the torch backend on CUDA (it sets gensim's threads and torch's CPU threads)"


def choose_backend(backend: str, device, owner: str):
    """``(backend, torch.device)`` a fit runs on: "auto" is torch on CUDA, else gensim; gensim
    runs on the CPU only (InputError for another device; "auto" then means the CPU)."""
    from ..._device import resolve_device

    if backend == "gensim":
        if str(device) not in ("auto", "cpu"):
            raise InputError(f"backend='gensim' runs on CPU only; use backend='torch' for device={device!r}")
        return "gensim", resolve_device("cpu", owner)
    dev = resolve_device(device, owner)
    if backend == "auto" and dev.type != "cuda":
        return "gensim", dev
    return "torch", dev


def ignored_by(backend: str, dev) -> dict:
    """``{parameter: why}`` that the chosen backend and device ignore (``workers`` on CUDA)."""
    return {"workers": _WORKERS_ON_CUDA} if backend == "torch" and dev.type == "cuda" else {}


def single_process() -> dict:
    """``{"sync_every": why}`` in a single process (no averaging to space out), else nothing."""
    from ...distributed import world

    if world().size > 1:
        return {}
    return {"sync_every": "in a single process (it spaces out the averages of a distributed fit: torchrun, --nproc)"}
