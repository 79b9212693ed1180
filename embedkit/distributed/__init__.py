"""Training past one process on ``torch.distributed`` (launched by ``torchrun``, Ray Train, Slurm...).

World size 1 is the normal single-process code path: every helper here is then a no-op that
returns its input, and no process group is created. Under ``torchrun`` (the environment holds
``WORLD_SIZE`` > 1, ``RANK``, ``MASTER_ADDR``/``MASTER_PORT``), :func:`setup` joins the process
group the first time a trainer's ``fit`` asks for it: ``gloo`` for CPU tensors, and
``cpu:gloo,cuda:nccl`` when the fit runs on CUDA.

Trainers use:

* :func:`setup` at the start of ``fit`` (returns the :class:`World`),
* :func:`shard` to take this rank's part of the data,
* :func:`all_reduce_mean_` / :func:`all_reduce_sum_` / :func:`all_gather_rows` /
  :func:`broadcast_` to exchange tensors; each call is counted in :func:`comm_stats`
  (bytes this rank sent into collectives, calls, seconds spent in them),
* :func:`is_main` to decide who writes: rank 0 alone writes a store or file,
* :func:`comm_mark` / :func:`comm_since` / :func:`set_comm` (or :func:`record_comm`) to measure a fit's
  traffic and set ``comm_bytes_`` / ``comm_seconds_`` on the model (distributed fits only).

Writes go through :func:`main_writes` (``Trainer.save``/``to_store`` and the CLI use it): rank 0
alone writes, without waiting for any other rank (``if dist.get_rank() == 0: model.save(...)``
works), then publishes the outcome in the group's key-value store; other ranks making the same call
wait for it, so a script that saves then loads on every rank sees the file, and a failed write
raises the same one-line error on every rank. Without an initialised process group every process
writes as a single process does, whatever ``RANK`` its environment holds.

``EMBEDKIT_DIST_TIMEOUT`` (seconds, default 600) bounds how long a collective waits for a rank
that died, so a failed rank stops the others instead of hanging them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "World", "world", "setup", "is_distributed", "is_main", "shard", "shard_slice",
    "all_reduce_mean_", "all_reduce_sum_", "all_gather_rows", "broadcast_", "barrier",
    "comm_stats", "reset_comm_stats", "checked_on_all_ranks", "DistributedError", "PeerError", "main_writes", "teardown",
    "same_on_all_ranks", "same_data_on_all_ranks", "sum_over_ranks", "mean_over_ranks", "per_rank",
    "COMM_ATTRS", "comm_mark", "comm_since", "set_comm", "record_comm",
]

# a model's figures of its last distributed fit (comm_syncs_: the skip-gram trainers' averages); a fit in one
# process sets none of them and drops those of an earlier fit
COMM_ATTRS = ("comm_bytes_", "comm_seconds_", "comm_syncs_")


class DistributedError(InputError):
    """A distributed run that cannot go on (bad environment, a collective that failed or timed out)."""


class PeerError(DistributedError):
    """Raised on a rank because another rank failed first (a peer died mid-collective, or rank 0's write
    failed): the cause is that rank's own message. Launchers report the first rank whose error is not this."""


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` in ``0..size-1``; ``size`` 1 means no process group."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


_STATS = {"bytes": 0, "calls": 0, "seconds": 0.0}
# owned: a group setup() created; writing: inside main_writes on rank 0; published: rank 0 published a write's
# outcome; atexit: _leave registered; left: _leave ran
_STATE = {"owned": False, "writing": False, "published": False, "atexit": False, "left": False}
_RANK0_LEFT = "embedkit/rank0_left"  # set by rank 0 as it leaves: a rank still waiting for a write stops
_WRITES: dict[str, int] = {}  # how many times this rank called main_writes for each ``what``


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name} must be a whole number; got {raw!r}") from None


def _env_world() -> World:
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if size < 1 or not 0 <= rank < size:
        raise DistributedError(f"RANK={rank} and WORLD_SIZE={size} do not fit: need 0 <= RANK < WORLD_SIZE")
    return World(rank, size, local)


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised (never imports torch: without
    torch loaded there is no group)."""
    if "torch" not in sys.modules:
        return False
    dist = _dist()
    return bool(dist and dist.is_initialized() and dist.get_world_size() > 1)


def world() -> World:
    """The current :class:`World`: the process group's when one is initialised, else the environment's
    (``WORLD_SIZE``/``RANK`` as torchrun sets them), else rank 0 of 1. Creates nothing."""
    dist = _dist() if "torch" in sys.modules else None
    if dist is not None and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))
    return _env_world()


def is_main() -> bool:
    """True on rank 0 (and always in a single process): the one process that writes."""
    return world().main


def setup(device=None) -> World:
    """Join the process group when launched by torchrun with ``WORLD_SIZE`` > 1; returns the World.

    A no-op when the group exists already (the caller's own ``init_process_group`` is respected) or
    when the world size is 1. ``device`` is the fit's torch device: CUDA adds the NCCL backend and
    pins this process to ``cuda:LOCAL_RANK``."""
    env = _env_world()
    dist = _dist()
    if dist is not None and dist.is_initialized():
        if dist.get_world_size() > 1:
            _at_exit()
        return world()
    if env.size == 1:
        return env
    if dist is None:
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed; "
                               "run one process or install a torch build with distributed support")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise DistributedError(f"WORLD_SIZE={env.size} but {name} is not set; launch with torchrun "
                                   "(or 'embedkit train ... --nproc N'), which sets it")
    from datetime import timedelta

    backend = "gloo"
    dev_type = getattr(device, "type", str(device) if device is not None else "cpu")
    if dev_type.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and dist.is_nccl_available():
            backend = "cpu:gloo,cuda:nccl"
            gpus = torch.cuda.device_count()
            local = _env_int("LOCAL_WORLD_SIZE", 0)
            if local > gpus or env.local_rank >= gpus:
                raise DistributedError(f"{max(local, env.local_rank + 1)} processes on this machine but {gpus} "
                                       f"CUDA device(s): NCCL needs one process per GPU; start {gpus} per machine "
                                       "(--nproc / --nproc-per-node) or train on the CPU (--device cpu)")
            torch.cuda.set_device(env.local_rank)
    seconds = _env_int("EMBEDKIT_DIST_TIMEOUT", 600)
    if seconds < 1:
        raise DistributedError(f"EMBEDKIT_DIST_TIMEOUT must be >= 1 second; got {seconds}")
    try:
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.size,
                                timeout=timedelta(seconds=seconds))
    except (RuntimeError, ValueError) as exc:  # DistNetworkError, DistStoreError... are RuntimeErrors
        raise DistributedError(f"rank {env.rank} could not join the process group at "
                               f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} ({_first_line(exc)})") from None
    _STATE["owned"] = True
    _STATE["left"] = False
    _at_exit()
    log.info("joined the process group: rank %d of %d (%s)", env.rank, env.size, backend)
    return env


def teardown() -> None:
    """Leave the process group that :func:`setup` created (a group the caller made is left alone)."""
    if not _STATE["owned"]:
        return
    _STATE["owned"] = False
    _leave()
    dist = _dist()
    if dist is not None and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception as exc:  # leaving must never turn a finished job into a failure
            log.debug("destroy_process_group: %s", exc)


def shard_slice(n: int, w: World | None = None) -> slice:
    """The contiguous part ``[start, stop)`` of ``n`` items that this rank owns (sizes differ by at most one)."""
    w = w or world()
    base, extra = divmod(n, w.size)
    start = w.rank * base + min(w.rank, extra)
    return slice(start, start + base + (1 if w.rank < extra else 0))


def shard(items, w: World | None = None):
    """This rank's contiguous part of a sequence or array (the whole of it in a single process)."""
    w = w or world()
    if w.size == 1:
        return items
    return items[shard_slice(len(items), w)]


def _count(tensor, seconds: float) -> None:
    _STATS["bytes"] += int(tensor.numel()) * int(tensor.element_size())
    _STATS["calls"] += 1
    _STATS["seconds"] += seconds


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _collective(fn, tensor, *args, sent=None, **kwargs):
    """``fn(tensor, *args, **kwargs)``, timed and counted (``sent``: the tensor this rank sends, when
    ``tensor`` is an output list); a failure is one line (PeerError)."""
    dist = _dist()
    t0 = time.perf_counter()
    try:
        result = fn(tensor, *args, **kwargs)
    except RuntimeError as exc:  # a peer died or timed out: one line, not gloo's trace
        raise PeerError(f"rank {dist.get_rank()}: a collective failed ({_first_line(exc)}); another rank has "
                        "probably stopped: see its message") from None
    _count(tensor if sent is None else sent, time.perf_counter() - t0)
    return result


def all_reduce_sum_(tensor):
    """Sum ``tensor`` over the ranks, in place; returns it (unchanged in a single process)."""
    if not is_distributed():
        return tensor
    dist = _dist()
    _collective(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean_(tensor):
    """Average ``tensor`` over the ranks, in place; returns it. Integer tensors are summed then floor-divided."""
    if not is_distributed():
        return tensor
    all_reduce_sum_(tensor)
    size = _dist().get_world_size()
    if tensor.is_floating_point():
        tensor.div_(size)
    else:
        tensor.floor_divide_(size)
    return tensor


def broadcast_(tensor, src: int = 0):
    """Overwrite ``tensor`` on every rank with rank ``src``'s; returns it."""
    if not is_distributed():
        return tensor
    dist = _dist()
    _collective(dist.broadcast, tensor, src=src)
    return tensor


def all_gather_rows(tensor):
    """Concatenate, in rank order, each rank's ``tensor`` along dim 0 (row counts may differ); returns a new
    tensor on every rank (``tensor`` itself in a single process)."""
    if not is_distributed():
        return tensor
    import torch

    dist = _dist()
    size = dist.get_world_size()
    n = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    counts = [torch.zeros_like(n) for _ in range(size)]
    _collective(dist.all_gather, counts, n, sent=n)
    counts = [int(c.item()) for c in counts]
    top = max(counts)
    padded = tensor
    if tensor.shape[0] < top:
        pad = torch.zeros((top - tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded = torch.cat([tensor, pad])
    padded = padded.contiguous()
    out = [torch.empty_like(padded) for _ in range(size)]
    _collective(dist.all_gather, out, padded, sent=padded)
    return torch.cat([o[:c] for o, c in zip(out, counts)])


def barrier() -> None:
    """Wait for every rank (nothing in a single process); a rank that died makes it raise PeerError."""
    if is_distributed():
        dist = _dist()
        try:
            dist.barrier()
        except RuntimeError as exc:
            raise PeerError(f"rank {dist.get_rank()}: waiting for the other ranks failed ({_first_line(exc)}); "
                            "another rank has probably stopped: see its message") from None


def comm_stats() -> dict:
    """What this process sent into collectives since the last reset: ``bytes``, ``calls``, ``seconds``."""
    return dict(_STATS)


def reset_comm_stats() -> None:
    _STATS.update(bytes=0, calls=0, seconds=0.0)


def comm_mark() -> dict:
    """The collective counters now: where a fit's traffic starts (measured by :func:`comm_since`)."""
    return comm_stats()


def comm_since(mark: dict) -> dict:
    """What this process sent into collectives since ``mark`` (:func:`comm_mark`): ``bytes`` (int) and
    ``seconds`` (float)."""
    now = comm_stats()
    return {"bytes": int(now["bytes"] - mark["bytes"]), "seconds": float(now["seconds"] - mark["seconds"])}


def set_comm(model, comm: dict | None) -> None:
    """Drop ``model``'s figures of an earlier fit (:data:`COMM_ATTRS`), then, when ``comm`` is given (a
    :func:`comm_since` of a distributed fit), set ``comm_bytes_`` and ``comm_seconds_`` from it."""
    for name in COMM_ATTRS:
        model.__dict__.pop(name, None)
    if comm is not None:
        model.comm_bytes_, model.comm_seconds_ = int(comm["bytes"]), float(comm["seconds"])


def record_comm(model, mark: dict | None) -> dict | None:
    """At the end of a fit: :func:`set_comm` with the traffic since ``mark`` under a process group (None
    in a single process or without a mark, which only drops the old figures). Returns what it set."""
    comm = comm_since(mark) if mark is not None and is_distributed() else None
    set_comm(model, comm)
    return comm


def same_on_all_ranks(values: np.ndarray, what: str) -> None:
    """Raise on every rank if a small array (e.g. a vocabulary hash or row count) differs between ranks:
    the ranks were given different data, and averaging would mix unrelated rows."""
    if not is_distributed():
        return
    import torch

    t = torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(-1).to(_control_device())
    lo, hi = t.clone(), t.clone()
    dist = _dist()
    _collective(dist.all_reduce, lo, op=dist.ReduceOp.MIN)
    _collective(dist.all_reduce, hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise DistributedError(f"the ranks disagree on {what}: every rank must read the same input "
                               "(the same file, the same options)")


def checked_on_all_ranks(check, what: str):
    """``check()`` (input checks, no collectives inside) on every rank; when it raises on some ranks only, every
    other rank raises a one-line DistributedError naming the first failing rank, instead of waiting for it in the
    next collective. The failing ranks raise their own error. ``check()``'s result in a single process or when
    no rank fails."""
    if not is_distributed():
        return check()
    err, result = None, None
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - raised again below, after the ranks have agreed
        err = exc
    failed = np.nonzero(per_rank(1.0 if err is not None else 0.0))[0]
    if err is not None:
        raise err
    if len(failed):
        raise PeerError(f"rank {int(failed[0])} refused {what} (its own error says why): every rank must read "
                        "the same input (the same file, the same options)")  # PeerError: the root cause is theirs
    return result


def sum_over_ranks(value):
    """A number or numpy array summed over the ranks (float64, or int64 for integers); ``value`` itself in
    a single process. Counted in :func:`comm_stats`."""
    if not is_distributed():
        return value
    import torch

    arr = np.asarray(value)
    t = torch.as_tensor(np.ascontiguousarray(arr, dtype=np.int64 if arr.dtype.kind in "iub" else np.float64))
    out = all_reduce_sum_(t.to(_control_device())).cpu().numpy()
    return out if arr.ndim else out.item()


def per_rank(value: float) -> np.ndarray:
    """Every rank's number ``value``, in rank order (float64; one all_reduce of one number per rank, on the
    control device); ``[value]`` in a single process."""
    if not is_distributed():
        return np.array([float(value)])
    w = world()
    mine = np.zeros(w.size)
    mine[w.rank] = float(value)
    return sum_over_ranks(mine)


def mean_over_ranks(value: float) -> float:
    """A number averaged over the ranks; ``value`` itself in a single process."""
    if not is_distributed():
        return value
    return float(sum_over_ranks(float(value))) / _dist().get_world_size()


def same_data_on_all_ranks(what: str, *parts) -> None:
    """Raise on every rank (:func:`same_on_all_ranks`) when ``parts`` differ between ranks: each part is an
    array (its shape and a CRC-32 of its bytes) or a sequence of labels / keys (its length and a CRC-32 of
    their text). Call it before any collective sized by the data, which would otherwise abort in the backend."""
    if not is_distributed():
        return
    import zlib

    summary = []
    for part in parts:
        arr = np.asarray(part) if isinstance(part, np.ndarray) else None
        if arr is not None and arr.dtype != object and arr.dtype.kind not in "US":
            data = np.ascontiguousarray(arr).tobytes()
            summary += [*arr.shape, zlib.crc32(data)]
        else:
            items = [str(x) for x in (part.reshape(-1).tolist() if isinstance(part, np.ndarray) else part)]
            summary += [len(items), zlib.crc32("\x1f".join(items).encode("utf-8", "surrogatepass"))]
    same_on_all_ranks(np.array(summary, dtype=np.float64), what)


def _control_device():
    """Where small control tensors live: the CPU unless the group is NCCL alone (a caller's own group)."""
    import torch

    dist = _dist()
    if not torch.cuda.is_available() or dist is None or not dist.is_initialized():
        return torch.device("cpu")
    backend = str(dist.get_backend())
    if "gloo" in backend or "mpi" in backend:
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def _store():
    """The process group's key-value store (c10d's, hosted by rank 0 or by torchrun's agent)."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def _write_key(what: str) -> str:
    """``what``'s key for its next write on this rank: ``what`` and how many times this rank wrote it before."""
    n = _WRITES.get(what, 0)
    _WRITES[what] = n + 1
    return f"embedkit/main_writes/{n}/{what}"


def main_writes(fn, *args, what: str = "the result", **kwargs):
    """Run ``fn(*args, **kwargs)`` on rank 0 alone and return its result there (None on the other ranks).

    In a single process, and in any process without an initialised process group (even one whose
    environment names a rank: a command started from a torchrun rank), it simply calls ``fn``.
    Under a process group rank 0 needs no other rank: it writes, then publishes the outcome (done,
    or its error message) in the group's key-value store, so the usual torchrun idiom
    ``if dist.get_rank() == 0: model.save(...)`` works. Rank 0 raises its own error when the write
    fails. The other ranks, if they make the same call, wait for that outcome (up to
    ``EMBEDKIT_WRITE_TIMEOUT`` seconds, default 24 h, not the collectives' ``EMBEDKIT_DIST_TIMEOUT``:
    a long write does not stop the job), return None once the write is complete (a script may load
    what was saved on every rank), or raise :class:`PeerError` naming rank 0's error. Calls nested
    inside ``fn`` run directly; ``fn`` runs on rank 0 alone, so it must not call a collective.

    The outcome is keyed by ``what`` (the entry name or file path) and how many times this rank
    saved that ``what`` before, so a rank-0-only save of one name followed by an every-rank save of
    another stays in step. Caveat: the same ``what`` saved first by rank 0 alone and later by every
    rank is out of step (the other ranks would read the first save's outcome and not wait for the
    second); save it by every rank each time or by rank 0 alone each time."""
    if _STATE["writing"] or not is_distributed():
        return fn(*args, **kwargs)
    dist = _dist()
    rank, size = dist.get_rank(), dist.get_world_size()
    key = _write_key(what)
    _at_exit()
    if rank == 0:
        result, error = None, None
        _STATE["writing"] = True
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # published below, then raised here
            error = exc
        finally:
            _STATE["writing"] = False
        text = "" if error is None else (" ".join(str(error).split()) or type(error).__name__)
        try:
            _store().set(key, "ok" if error is None else "error:" + text)
            _STATE["published"] = True
        except Exception as exc:  # the write itself is done (or its error raised below); only the others miss it
            log.warning("rank 0 could not tell the other ranks how writing %s went: %s", what, _first_line(exc))
        if error is not None:
            raise error
        return result
    seconds = _env_int("EMBEDKIT_WRITE_TIMEOUT", 86400)
    if seconds < 1:
        raise DistributedError(f"EMBEDKIT_WRITE_TIMEOUT must be >= 1 second; got {seconds}")
    deadline, pause = time.monotonic() + seconds, 0.01
    try:
        store = _store()
        # polled with check() (a blocking wait that times out logs a warning each time), to also notice rank 0
        # leaving without writing this (a name that differs between the ranks)
        while not store.check([key]):
            if store.check([_RANK0_LEFT]) and not store.check([key]):
                raise PeerError(f"rank 0 finished without writing {what}: every rank must save the same name "
                                "or file (or rank 0 alone saves)")
            if time.monotonic() >= deadline:
                raise DistributedError(f"rank {rank}: rank 0 did not finish writing {what} within "
                                       f"EMBEDKIT_WRITE_TIMEOUT={seconds} s; raise it for a longer write")
            time.sleep(pause)
            pause = min(0.5, pause * 2)
        outcome = store.get(key).decode("utf-8", "replace")
    except DistributedError:
        raise
    except Exception as exc:  # a closed connection (rank 0 stopped)
        raise PeerError(f"rank {rank}: waiting for rank 0 to write {what} failed ({_first_line(exc)}); rank 0 has "
                        "probably stopped: see its message") from None
    if outcome.startswith("error:"):
        raise PeerError(f"rank 0 could not write {what}: {outcome[len('error:'):]}")
    log.debug("rank %d of %d: %s written by rank 0", rank, size, what)
    return None


def _at_exit() -> None:
    """Register, once, :func:`_on_exit` to run at exit."""
    if not _STATE["atexit"]:
        _STATE["atexit"] = True
        import atexit

        atexit.register(_on_exit)


def _on_exit() -> None:
    """At exit: leave the group :func:`setup` created (:func:`teardown`), or only say so for the caller's group."""
    if _STATE["owned"]:
        teardown()
    else:
        _leave()


def _leave() -> None:
    """Before a rank leaves the group: tell the others it has left; rank 0, when it published a write's
    outcome, waits (up to ``EMBEDKIT_DIST_TIMEOUT``) until every other rank has left, because its store
    (unless torchrun's agent holds it) goes away with it while another rank may still read the outcome."""
    if _STATE["left"] or not is_distributed():
        return
    _STATE["left"] = True
    dist = _dist()
    try:
        store = _store()
        count = store.add("embedkit/left", 1)
        if dist.get_rank() != 0:
            return
        store.set(_RANK0_LEFT, "1")
        if not _STATE["published"]:
            return
        size = dist.get_world_size()
        deadline = time.monotonic() + _env_int("EMBEDKIT_DIST_TIMEOUT", 600)
        while count < size and time.monotonic() < deadline:
            time.sleep(0.05)
            count = store.add("embedkit/left", 0)
    except Exception as exc:  # leaving never fails a finished job
        log.debug("leaving the group: %s", _first_line(exc))
