"""Start N local processes of one command as a torch.distributed job (what ``--nproc N`` does).

Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1`` and a free
``MASTER_PORT``, as torchrun would set them. When one exits with an error the others are stopped,
and :func:`launch` returns that first failure's status and message, so the job ends with one line
instead of N tracebacks. For several machines use torchrun itself (see docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class LaunchResult:
    returncode: int
    failed_rank: int | None
    message: str  # the failing rank's last stderr line ('' on success)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def launch(cmd: list[str], nproc: int, *, env: dict | None = None, timeout: float | None = None,
           poll: float = 0.05) -> LaunchResult:
    """Run ``cmd`` as ``nproc`` ranks on this machine; rank 0's stdout/stderr pass through, the others'
    stderr is kept and its last line reported if that rank fails. Returns a :class:`LaunchResult`."""
    if nproc < 1:
        from ..errors import InputError

        raise InputError(f"--nproc must be >= 1; got {nproc}")
    base = dict(os.environ if env is None else env)
    base.update(WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                LOCAL_WORLD_SIZE=str(nproc))
    procs, logs = [], []
    tmp = tempfile.mkdtemp(prefix="embedkit-launch-")
    try:
        for rank in range(nproc):
            e = dict(base, RANK=str(rank), LOCAL_RANK=str(rank))
            err_path = os.path.join(tmp, f"rank{rank}.err")
            logs.append(err_path)
            err = open(err_path, "wb")
            out = None if rank == 0 else subprocess.DEVNULL
            procs.append(subprocess.Popen(cmd, env=e, stdout=out, stderr=err))
            err.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        failed = None
        while True:
            codes = [p.poll() for p in procs]
            bad = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                failed = bad[0]
                break
            if all(c == 0 for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                failed = -1
                break
            time.sleep(poll)
        if failed is not None:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # rank 0's stderr passes through after the run (its messages, progress bars)
        with open(logs[0], "rb") as fh:
            sys.stderr.write(fh.read().decode("utf-8", "replace"))
        if failed is None:
            return LaunchResult(0, None, "")
        if failed == -1:
            return LaunchResult(124, None, f"the job did not finish within {timeout:g} s; all ranks were stopped")
        return LaunchResult(procs[failed].returncode or 1, failed, _last_line(logs[failed]))
    finally:
        for path in logs:
            try:
                os.unlink(path)
            except OSError:
                pass
        try:
            os.rmdir(tmp)
        except OSError:
            pass
