"""A small readers-writer lock: many concurrent searches, one writer at a time."""

from __future__ import annotations

import threading
from contextlib import contextmanager


class RWLock:
    """Writer-preferring readers-writer lock (a waiting writer blocks new readers)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._read_section = _ReadSection(self)

    def read(self):
        """``with lock.read():`` a shared section (one reusable context object, no generator)."""
        return self._read_section

    def _acquire_read(self):
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def _release_read(self):
        with self._cond:
            self._readers -= 1
            # only a writer waits for the readers to leave (readers wait for writers only), so
            # with none waiting there is nobody to wake: skipping notify_all saves ~2 us a search
            if self._readers == 0 and self._writers_waiting:
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _ReadSection:
    __slots__ = ("_lock",)

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        self._lock._acquire_read()

    def __exit__(self, *exc):
        self._lock._release_read()
        return False
