"""Start N local processes of one command as a torch.distributed job (what ``--nproc N`` does).

Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR=127.0.0.1`` and a free ``MASTER_PORT``, as torchrun would set them, plus
``OMP_NUM_THREADS`` = cores / N when it is unset (N ranks on all cores each would oversubscribe
the machine) and ``EMBEDKIT_ERROR_FILE``, where the ``embedkit`` command line of that rank writes
its one-line error instead of printing it.

Rank 0's stdout and stderr pass through as the job runs (progress bars included); the other
ranks' stdout is dropped and their stderr kept. When a rank exits with an error the others are
stopped, and :func:`launch` returns the status and message of the rank that failed *first*: a
rank that only failed because a peer died (:class:`~embedkit.distributed.PeerError`) is not the
culprit. If rank 0 cannot listen on the chosen port (another program took it between the choice
and the bind), the job is started once more on a new port. Ctrl-C (or SIGTERM to this process)
stops every rank, then raises KeyboardInterrupt. For several machines use torchrun itself (see
docs/distributed.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PORT_CLASH = re.compile(r"address already in use|EADDRINUSE|errno 98", re.IGNORECASE)
_TAIL = 16384  # bytes of each rank's stderr kept for its message


@dataclass
class LaunchResult:
    returncode: int
    failed_rank: int | None
    message: str  # the failing rank's error line ('' on success)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _read_tail(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - _TAIL))
            return fh.read()
    except OSError:
        return b""


def _read_record(path: str) -> dict | None:
    """The error the embedkit CLI of a rank wrote (see :func:`embedkit.distributed.cli.record_error`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("message"), str) else None


class _Tee(threading.Thread):
    """Copy a child's stderr pipe to ours as it comes, keeping its tail."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe, self.tail = pipe, b""

    def run(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.tail = (self.tail + chunk)[-_TAIL:]
            try:
                target = getattr(sys.stderr, "buffer", None)
                if target is not None:
                    target.write(chunk)
                else:
                    sys.stderr.write(chunk.decode("utf-8", "replace"))
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr went away: keep draining the pipe
                pass
        self.pipe.close()


class _Stop(Exception):
    """SIGTERM reached the launcher."""


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def launch(cmd: list[str], nproc: int, *, env: dict | None = None, timeout: float | None = None,
           poll: float = 0.05, port_retries: int = 1) -> LaunchResult:
    """Run ``cmd`` as ``nproc`` ranks on this machine and wait for them; returns a :class:`LaunchResult`
    (``returncode`` 0 when every rank succeeded; 124 when ``timeout`` seconds passed, all ranks stopped).

    ``env`` replaces this process's environment for the ranks. A failed rank's message is the line its
    embedkit CLI reported, else the last line of its stderr, else how it ended."""
    if nproc < 1:
        from ..errors import InputError

        raise InputError(f"--nproc must be >= 1; got {nproc}")
    for attempt in range(port_retries + 1):
        result, clash = _run_once(cmd, nproc, env, timeout, poll)
        if not clash or attempt == port_retries:
            return result
        log.warning("rank 0 could not listen on its port (%s); starting the job again on another port", result.message)
    return result  # pragma: no cover - the loop always returns


def _run_once(cmd, nproc, env, timeout, poll) -> tuple[LaunchResult, bool]:
    from .._device import cpu_count

    base = dict(os.environ if env is None else env)
    base.update(WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK="0")
    base.setdefault("OMP_NUM_THREADS", str(max(1, cpu_count() // nproc)))
    tmp = tempfile.mkdtemp(prefix="embedkit-launch-")
    procs, errs, records = [], [], []
    tee = None
    previous = None
    if threading.current_thread() is threading.main_thread():
        def _on_term(signum, frame):
            raise _Stop()

        previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        for rank in range(nproc):
            records.append(os.path.join(tmp, f"rank{rank}.json"))
            e = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), EMBEDKIT_ERROR_FILE=records[rank])
            if rank == 0:
                procs.append(subprocess.Popen(cmd, env=e, stderr=subprocess.PIPE))
                tee = _Tee(procs[0].stderr)
                tee.start()
                errs.append(None)
            else:
                errs.append(os.path.join(tmp, f"rank{rank}.err"))
                with open(errs[rank], "wb") as err:
                    procs.append(subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  stderr=err))
        deadline = None if timeout is None else time.monotonic() + timeout
        failed: list[int] = []  # in the order their failure was seen
        timed_out = False
        while True:
            codes = [p.poll() for p in procs]
            failed += [r for r, c in enumerate(codes) if c not in (None, 0) and r not in failed]
            if failed or all(c == 0 for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(poll)
        if failed or timed_out:
            time.sleep(min(0.2, 4 * poll))  # let ranks failing on the same cause land before the others are stopped
            failed += [r for r, p in enumerate(procs) if p.poll() not in (None, 0) and r not in failed]
            _stop(procs)
    except BaseException as exc:  # Ctrl-C, SIGTERM, a command that cannot start: no rank is left behind
        _stop(procs)
        if isinstance(exc, _Stop):
            raise KeyboardInterrupt("stopped by SIGTERM") from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if tee is not None:
            tee.join(timeout=5)
        tail0 = tee.tail if tee is not None else b""
        found = [_read_record(p) for p in records]
        tails = [tail0] + [_read_tail(p) for p in errs[1:] if p]
        for path in [*records, *(p for p in errs if p)]:
            try:
                os.unlink(path)
            except OSError:
                pass
        try:
            os.rmdir(tmp)
        except OSError:
            pass
    if timed_out and not failed:
        return LaunchResult(124, None, f"the job did not finish within {timeout:g} s; all ranks were stopped"), False
    if not failed:
        return LaunchResult(0, None, ""), False
    for r in failed:  # a script's traceback (no record): its last line says whether a peer's failure caused it
        if found[r] is None and tails[r]:
            last = _last_line(tails[r])
            if "PeerError" in last:
                found[r] = {"message": last, "secondary": True, "time": float("inf")}
    rank = _culprit(failed, found)
    rec = found[rank]
    message = rec["message"] if rec else (_last_line(tails[rank]) or _describe(procs[rank].returncode))
    code = procs[rank].returncode
    code = 128 - code if code < 0 else code or 1
    clash = rank == 0 and bool(_PORT_CLASH.search(message + " " + tails[0].decode("utf-8", "replace")[-2000:]))
    return LaunchResult(code, rank, message), clash


def _culprit(failed: list[int], records: list[dict | None]) -> int:
    """The rank that failed first for a reason of its own: ranks whose error is a peer's failure come
    last; then by the time the error was written; ranks with the same message as an earlier one report
    the lowest rank (every rank refusing the same input)."""
    def key(r):
        rec = records[r]
        if rec is None:
            return (1, float("inf"), failed.index(r))
        return (2 if rec.get("secondary") else 0, float(rec.get("time", 0.0)), failed.index(r))

    best = min(failed, key=key)
    rec = records[best]
    if rec is not None and not rec.get("secondary"):
        same = [r for r in failed if records[r] is not None and _strip_rank(records[r]["message"], r)
                == _strip_rank(rec["message"], best)]
        best = min(same)
    return best


def _strip_rank(message: str, rank: int) -> str:
    for prefix in ("error: ", f"rank {rank}: ", f"[rank{rank}]: "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


def _stop(procs, grace: float = 10.0) -> None:
    """SIGTERM every rank still running, SIGKILL those still there after ``grace`` seconds."""
    for p in procs:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
