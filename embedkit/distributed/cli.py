"""What the ``embedkit`` command line does around a distributed run (called by :func:`embedkit.cli.main`).

* ``embedkit train X ... --nproc N`` outside a job: :func:`run_local` starts the same command line
  (without ``--nproc``) as N local ranks with :func:`~embedkit.distributed.launch.launch` and
  reports a failure as one line, ``error: rank R failed: <that rank's error>``.
* Inside a job (``WORLD_SIZE`` > 1: torchrun, or the ranks :func:`run_local` started):
  :func:`enter_job` joins the process group before the verb runs, so every trainer finds it, and
  quiets the ranks other than 0 (no stdout, no progress bars, no repeated warnings).
* :func:`error_line` / :func:`report_error`: a rank's one-line error, prefixed ``rank R:`` on ranks
  other than 0, written to ``EMBEDKIT_ERROR_FILE`` when the launcher asked for it (so the job
  prints one line, not one per rank).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings

from . import DistributedError, PeerError, _env_int, _env_world, setup, world

log = logging.getLogger(__name__)


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


def wants_launch(args) -> bool:
    """``--nproc`` > 1 given outside a distributed job."""
    return int(getattr(args, "nproc", 1) or 1) > 1 and _env_int("WORLD_SIZE", 1) <= 1


def _clean(message: str, rank: int) -> str:
    message = " ".join(message.split())
    for prefix in ("error: ", f"rank {rank}: ", f"[rank{rank}]: ", f"[rank{rank}]:"):
        if message.startswith(prefix):
            message = message[len(prefix):].lstrip()
    return message


def run_local(argv: list[str], nproc: int, *, cmd: list[str] | None = None, timeout: float | None = None) -> int:
    """Run ``embedkit ARGV`` (or ``cmd``) as ``nproc`` local ranks; returns the job's exit status and
    writes one line on stderr when a rank failed."""
    from .launch import launch

    cmd = cmd or [sys.executable, "-m", "embedkit", *strip_nproc(argv)]
    log.info("starting %d local ranks: %s", nproc, " ".join(cmd))
    result = launch(cmd, nproc, timeout=timeout)
    if result.returncode == 0:
        return 0
    if result.failed_rank is None:
        sys.stderr.write(f"error: {_clean(result.message, -1)}\n")
    else:
        why = _clean(result.message, result.failed_rank) or "no message"
        sys.stderr.write(f"error: rank {result.failed_rank} failed: {why}\n")
    return result.returncode


class Job:
    """This rank's place in a distributed CLI run; :meth:`close` undoes the quieting of :func:`enter_job` (the
    process group itself is left at exit)."""

    def __init__(self, rank: int):
        self.rank = rank
        self._stdout = None
        self._warnings = None
        self._level = None

    def quiet(self, args) -> None:
        """Ranks other than 0: no stdout, no progress bars, warnings and info logs left to rank 0."""
        if hasattr(args, "no_progress"):
            args.no_progress = True
        self._stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        if not getattr(args, "verbose", False):
            root = logging.getLogger()
            self._level = root.level
            root.setLevel(logging.ERROR)

    def close(self) -> None:
        if self._stdout is not None:
            try:
                sys.stdout.close()
            finally:
                sys.stdout, self._stdout = self._stdout, None
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
        if self._level is not None:
            logging.getLogger().setLevel(self._level)
            self._level = None
        # the process group stays until the process exits (see distributed._on_exit): verbs run one after
        # another in one process (main() called from a script) share it instead of re-joining on the same port


def _device_for(args, env):
    """The device :func:`setup` is told: CUDA (NCCL beside gloo) when the run will use GPUs."""
    dev = str(getattr(args, "device", "auto") or "auto")
    if dev == "cpu":
        return None
    if dev.startswith("cuda:"):
        raise DistributedError(f"--device {dev} would put every rank on one GPU; pass --device cuda: each rank "
                               "then uses the GPU of its LOCAL_RANK")
    import torch

    if not torch.cuda.is_available():
        return None  # a trainer asked for cuda says itself that there is none
    ranks, gpus = max(_env_int("LOCAL_WORLD_SIZE", 0), env.local_rank + 1), torch.cuda.device_count()
    if ranks > gpus:  # NCCL takes one process per GPU; 'auto' would put several ranks on one GPU
        raise DistributedError(f"{ranks} ranks on this machine but {gpus} CUDA device(s): start at most {gpus} "
                               f"(one per GPU), or pass --device cpu to train on the CPU")
    return torch.device("cuda")


def enter_job(args) -> Job | None:
    """Inside a distributed job: join the process group (gloo, or NCCL beside it on GPUs) and quiet the
    ranks other than 0. Returns None in a single process."""
    env = _env_world()
    if env.size == 1:
        return None
    n = int(getattr(args, "nproc", 1) or 1)
    if n > 1 and n not in (env.size, _env_int("LOCAL_WORLD_SIZE", env.size)):
        raise DistributedError(f"--nproc {n} inside a job of {env.size} ranks: leave --nproc out under torchrun "
                               "(its --nproc-per-node says how many)")
    w = setup(_device_for(args, env))
    job = Job(w.rank)
    if w.rank != 0:
        job.quiet(args)
    return job


def error_line(message: str) -> str:
    """``error: MESSAGE``, with ``rank R:`` in front on ranks other than 0."""
    try:
        rank = world().rank
    except DistributedError:
        rank = 0
    message = " ".join(message.split())
    if rank > 0 and not message.startswith(f"rank {rank}"):
        message = f"rank {rank}: {message}"
    return f"error: {message}"


def report_error(line: str, exc: BaseException | None = None) -> None:
    """Write ``line`` where the launcher reads it (``EMBEDKIT_ERROR_FILE`` inside a job :func:`run_local`
    started), else on stderr. ``exc`` a :class:`PeerError` (or Ctrl-C) marks the failure as a consequence of
    another's. Under torchrun a rank's own failure also goes to its ``TORCHELASTIC_ERROR_FILE``, so the
    agent's summary shows that line as the root cause instead of "To enable traceback see ..."."""
    secondary = isinstance(exc, (PeerError, KeyboardInterrupt))
    if _env_int("WORLD_SIZE", 1) > 1:
        path = os.environ.get("EMBEDKIT_ERROR_FILE")
        if path and _write_json(path, {"message": line, "secondary": secondary, "time": time.time(),
                                       "rank": _env_int("RANK", 0)}):
            return
        elastic = os.environ.get("TORCHELASTIC_ERROR_FILE")
        if elastic and not secondary:
            _write_json(elastic, {"message": line, "timestamp": int(time.time())})
    sys.stderr.write(line + "\n")


def _write_json(path: str, record: dict) -> bool:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        return True
    except OSError:
        return False
