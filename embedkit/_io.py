"""Durable file writes, a cross-process lock per saved name, and bounded line reading.

``atomic_write_bytes`` writes a temporary file beside the target, fsyncs it, renames it over
the target and fsyncs the directory, so that after a crash the target holds either the old
bytes or the new ones, and after it returns the new ones survive a power cut.

:func:`name_lock` is the advisory lock every writer of a saved directory takes: an exclusive
``fcntl.flock`` on ``<parent>/.<name>.lock`` (works across processes on one machine, re-entrant
within one process). The holder deletes the lock file before it lets go, and a process that
got the lock re-checks that the file it locked is still the one at that path (else it tries
again), so two writers can never hold locks on two different files and no file is left behind.

:func:`bounded_lines` reads a binary file line by line but refuses a line longer than a limit
with a one-line :class:`~embedkit.errors.ParseError` naming file and line, so a single-line
1 GB file or ``/dev/zero`` never has to fit in memory.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError, ParseError, StoreError

MAX_LINE_BYTES = 64 << 20
"""The longest input line the text loaders accept (64 MiB): a sentence, a CSV row or a vector."""


def fsync_file(path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path) -> None:
    """fsync a directory so that renames and new entries in it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_tmps(path: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` files of ``path`` left by writers that were killed (their
    process no longer exists); a live process's temporary file is never touched."""
    pat = re.compile(re.escape(f".{path.name}.tmp-") + r"([0-9]{1,10})")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for n in names:
        m = pat.fullmatch(n)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(path.parent / n)
            except OSError:
                pass


def _fix_for(exc: OSError) -> str:
    """What a user can do about a failed write, by its errno."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space or choose another disk"
    if exc.errno == errno.EISDIR:
        return "give a file path, not a directory"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of the path is a file, not a directory; choose another path"
    if exc.errno == errno.ENAMETOOLONG:
        return "choose a shorter file name"
    if exc.errno == errno.EROFS:
        return "the file system is read-only; choose another disk"
    return "choose a writable directory"


_TYPED: dict[type, type] = {}


def _store_error_like(exc: OSError) -> type:
    """StoreError, or a subclass that is also ``exc``'s own OSError subclass (PermissionError,
    FileNotFoundError...), so that code catching those around a save keeps catching it."""
    kind = type(exc)
    if kind is OSError or not issubclass(kind, OSError) or issubclass(kind, StoreError):
        return StoreError
    if kind not in _TYPED:
        _TYPED[kind] = type("StoreError", (StoreError, kind), {"__module__": StoreError.__module__})
    return _TYPED[kind]


def write_error(path, exc: OSError, doing: str = "write") -> StoreError:
    """A one-line StoreError (an OSError too) for a failed write of ``path``: the target, not a temporary
    file, the reason and the fix; ``errno``, ``strerror`` and ``filename`` are those of ``exc`` and ``path``.
    Raise it ``from exc``."""
    if isinstance(exc, StoreError):
        return exc
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    err = _store_error_like(exc)(f"cannot {doing} {path}: {reason}; {_fix_for(exc)} "
                                 "(the previous file, if any, is unchanged)")
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, str(path)
    return err


def discard_staged(tmp) -> None:
    """Drop a file :func:`stage_bytes` wrote that will not be committed (a missing file is fine)."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


@contextmanager
def _removed_on_failure(tmp, path: Path):
    """On any failure inside the block: ``tmp`` removed; an OSError becomes a StoreError naming ``path``."""
    try:
        yield
    except BaseException as exc:
        discard_staged(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def stage_bytes(path, data: bytes) -> Path:
    """Write ``data`` to the temporary file ``.<name>.tmp-<pid>`` beside ``path`` (parents created), fsynced,
    and return it; :func:`commit_staged` then renames it over ``path``, :func:`discard_staged` drops it.
    Nothing at ``path`` changes here. Raises StoreError naming ``path`` (the temporary file removed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with _removed_on_failure(tmp, path):
        if path.is_dir():  # said now, not by the rename after the whole write
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmps(path)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return tmp


def commit_staged(tmp, path) -> Path:
    """Rename the staged ``tmp`` over ``path`` and fsync the directory; on failure ``tmp`` is removed,
    ``path`` is left as it was and StoreError names ``path``."""
    path = Path(path)
    with _removed_on_failure(tmp, path):
        os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically and durably (file and directory fsync).

    The temporary file is ``.<name>.tmp-<pid>``; those of killed writers are removed here. A failure
    raises a one-line :class:`~embedkit.errors.StoreError` (an OSError) naming ``path``, its reason and
    the fix, chained from the original error; ``path`` keeps its previous bytes and the temporary file
    is removed."""
    path = Path(path)
    return commit_staged(stage_bytes(path, data), path)


def check_writable(path, label: str = "") -> Path:
    """Refuse, before any work is done, a file path that :func:`atomic_write_bytes` could not write:
    a directory, a path under a file, or a directory where no file can be created (probed by creating
    and removing a file in the nearest existing directory; nothing else is created). Raises a one-line
    InputError starting with ``label`` (e.g. ``"--anomaly"``) and the path."""
    import tempfile

    path = Path(path)
    where = f"{label} {path}" if label else str(path)
    try:
        if path.is_dir():
            raise InputError(f"{where}: is a directory; give a file path such as {path / 'scores.csv'}")
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(f"{where}: {parent} is a file, not a directory; choose another path")
        fd, probe = tempfile.mkstemp(prefix=".embedkit-check-", dir=parent)  # a unique name, even across hosts
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{where}: cannot create a file there ({reason}); {_fix_for(exc)}") from None
    os.close(fd)
    discard_staged(probe)
    return path


# ---------------------------------------------------------------------- the per-name writer lock
class _Held:
    __slots__ = ("rlock", "fd", "depth")

    def __init__(self):
        self.rlock = threading.RLock()
        self.fd = None
        self.depth = 0


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


def lock_path(path) -> Path:
    """The lock file of saved directory ``path``: ``<parent>/.<name>.lock``."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def wait_for_writer(path, timeout: float = 30.0) -> bool:
    """Wait (at most ``timeout`` seconds) until no writer of saved directory ``path`` holds its lock;
    True if one was waited for. A reader that finds ``path`` in the middle of a swap calls this
    instead of guessing how long a save takes. Returns at once when this thread itself holds the
    lock (a writer looking at its own directory) or when there is no lock file."""
    import fcntl

    key = os.path.abspath(lock_path(path))
    with _held_guard:
        held = _held.get(key)
    if held is not None and held.depth and held.rlock._is_owned():  # our own save: never wait on ourselves
        return False
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except OSError:
        return False
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() >= deadline:
                    return True
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


@contextmanager
def name_lock(path, timeout: float | None = 600.0, what: str = "save"):
    """Hold the exclusive writer lock of saved directory ``path`` (see the module doc).

    Re-entrant within a process (threads wait for each other; the holding thread may nest).
    Raises StoreError (one line) when another writer holds it for more than ``timeout``
    seconds (None: wait for ever).
    """
    lpath = lock_path(path)
    key = os.path.abspath(lpath)
    with _held_guard:
        held = _held.setdefault(key, _Held())
    deadline = None if timeout is None else time.monotonic() + timeout
    if not held.rlock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
        raise StoreError(f"{path}: another {what} of this index in this process did not finish within "
                         f"{timeout:g} s; try again later")
    try:
        if held.depth == 0:
            held.fd = _flock(lpath, deadline, path, what)
        held.depth += 1
    except BaseException:
        held.rlock.release()
        raise
    try:
        yield
    finally:
        held.depth -= 1
        if held.depth == 0:
            fd, held.fd = held.fd, None
            try:
                import fcntl

                try:
                    os.unlink(lpath)  # still ours: nobody else can hold it now
                except OSError:
                    pass

                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        held.rlock.release()


def _flock(lpath: Path, deadline, path, what) -> int:
    import fcntl

    lpath.parent.mkdir(parents=True, exist_ok=True)
    delay = 0.001
    while True:
        try:
            fd = os.open(lpath, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{lpath}: cannot open the lock file ({exc.strerror}); check the permissions of "
                             f"{lpath.parent}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:  # the holder before us may have deleted the file we locked: then lock the new one
                same = os.stat(lpath).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)
            continue
        except BlockingIOError:
            os.close(fd)
            if deadline is not None and time.monotonic() >= deadline:
                raise StoreError(f"{path}: another process is writing this index (lock {lpath.name} held "
                                 f"longer than the wait allowed); the {what} was not done, try again") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"{lpath}: cannot lock ({exc.strerror})") from None


# ---------------------------------------------------------------------- bounded line reading
def bounded_lines(fh, path, max_bytes: int = MAX_LINE_BYTES, first_line: int = 1):
    """Yield ``(line_number, raw_bytes)`` of binary file object ``fh``, each line at most
    ``max_bytes`` bytes (its newline excluded); a longer one raises ParseError naming
    ``path`` and the line. Memory stays O(max_bytes) whatever the file holds."""
    no = first_line - 1
    readline = fh.readline
    while True:
        raw = readline(max_bytes + 1)
        if not raw:
            return
        no += 1
        if len(raw) > max_bytes and not (len(raw) == max_bytes + 1 and raw.endswith(b"\n")):
            raise ParseError(path, no, f"line longer than {max_bytes} bytes, the limit of one line; "
                             "is this a text file with one record per line? split the line or check the file")
        yield no, raw


def open_maybe_compressed(path):
    """``path`` opened for binary reading, decompressed on the fly when it ends in .gz, .bz2 or .xz."""
    name = str(path).lower()
    if name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rb")
    if name.endswith(".xz"):
        import lzma

        return lzma.open(path, "rb")
    return open(path, "rb")


def check_line_lengths(path, max_bytes: int | None = None, block: int = 4 << 20) -> None:
    """Scan file ``path`` once in blocks and raise ParseError (file and line) at the first line
    longer than ``max_bytes`` (default :data:`MAX_LINE_BYTES`), before a parser that would hold
    the whole line in memory reads it. Memory stays O(block); stops at the first long line, so
    ``/dev/zero`` is refused after ``max_bytes`` bytes."""
    import numpy as np

    limit = MAX_LINE_BYTES if max_bytes is None else max_bytes
    run, lines = 0, 1  # bytes of the current line so far; its line number
    with open_maybe_compressed(path) as fh:
        while True:
            data = fh.read(block)
            if not data:
                return
            nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
            if len(nl) == 0:
                run += len(data)
                if run > limit:
                    break
                continue
            first = run + int(nl[0])
            if first > limit:
                break
            if len(nl) > 1:
                gaps = np.diff(nl) - 1
                worst = int(np.argmax(gaps))
                if gaps[worst] > limit:
                    lines += worst + 1
                    break
            lines += len(nl)
            run = len(data) - int(nl[-1]) - 1
            if run > limit:
                break
    raise ParseError(path, lines, f"line longer than {limit} bytes, the limit of one line; is this a text "
                     "file with one record per line? split the line or check the file")
