"""What one client can make the service do: request guards, work limits, connection limits.

* :class:`Guard` (ASGI middleware) refuses, before the route reads anything: a ``Host`` header
  outside the allow-list (421, DNS rebinding), a write without the right token (401/403, the body
  never read), a body over the size limit (413) and a body that does not arrive within the time
  limit (408).
* :class:`WorkLimits` bounds one search's results (queries x k, and their size) and how many
  heavy searches run at once (429 beyond that).
* :func:`server_config` is the uvicorn configuration the CLI runs: a connection limit below the
  process's file limit (an idle connection is dropped to make room for a new one), and a deadline
  for the request head of every new or kept-alive connection, so half-open sockets cannot lock
  clients out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.exceptions import HTTPException

from ..errors import InputError

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
CLOSE = {"connection": "close"}


class _Refused(HTTPException):
    """Raised from receive(); FastAPI passes HTTPExceptions through to the app's error handler."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message, headers=CLOSE)


# ----------------------------------------------------------------------------- hosts
def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def host_of(header: str) -> str:
    """The host name of a ``Host`` header value, without the port: ``[::1]:8000`` -> ``::1``."""
    header = header.strip()
    if header.startswith("["):
        return _normal_host(header[: header.find("]") + 1] if "]" in header else header)
    name, sep, port = header.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        header = name
    return _normal_host(header)


def check_allowed_hosts(hosts) -> frozenset[str] | None:
    """The allow-list as a set of normalised names; None when it holds ``*`` (no check)."""
    if isinstance(hosts, str):
        raise InputError("allowed_hosts must be a list of host names, not a single string; wrap it in a list")
    out = set()
    for h in hosts:
        if not isinstance(h, str) or not h.strip():
            raise InputError(f"allowed_hosts: {h!r} is not a host name; give names such as 'localhost' or '*' "
                             "(no check)")
        if h.strip() == "*":
            return None
        if any(c in h for c in "/@ ?#"):
            raise InputError(f"allowed_hosts: {h!r} is not a host name (give the name only, e.g. 'example.org', "
                             "without scheme, path or port)")
        out.add(host_of(h))
    return frozenset(out)


# ----------------------------------------------------------------------------- the ASGI guard
class Guard:
    """ASGI middleware run before routing. ``allowed_hosts``: normalised names or None (no check);
    ``write_auth(scope)``: None when the request may proceed, else ``(status, message, headers)``
    (a write without the right token), called before any of the body is read."""

    def __init__(self, app, *, max_bytes: int, body_timeout: float | None = 30.0, allowed_hosts=None,
                 write_auth=None):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.body_timeout = body_timeout
        self.allowed_hosts = allowed_hosts
        self.write_auth = write_auth

    @staticmethod
    async def reply(send, status: int, message: str, headers=()) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"),
                                *[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = host = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                length = value
            elif name == b"host":
                host = value
        if self.allowed_hosts is not None and host is not None:
            name = host_of(host.decode("latin-1"))
            if name not in self.allowed_hosts:
                hint = ("; in-process tests: TestClient(app, base_url='http://127.0.0.1')" if name == "testserver"
                        else "")
                return await self.reply(send, 421, f"host {name!r} is not served here (DNS rebinding guard); start "
                                                   f"the server with --allow-host {name} to allow it{hint}")
        if self.write_auth is not None:
            refused = self.write_auth(scope)
            if refused is not None:  # before a byte of the body is read
                return await self.reply(send, *refused)
        limit = self.max_bytes
        too_large = f"request body larger than the limit of {limit} bytes; send fewer items per request"
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await self.reply(send, 400, "the Content-Length header is not a number")
            if n > limit:
                return await self.reply(send, 413, too_large)
        received = 0
        body_done = False
        deadline = None if self.body_timeout is None else time.monotonic() + self.body_timeout
        started = False

        async def guarded_receive():
            nonlocal received, body_done
            if body_done or deadline is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
                except asyncio.TimeoutError:
                    raise _Refused(408, f"the request body did not arrive within {self.body_timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _Refused(413, too_large)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _Refused as exc:  # raised outside a route (its handler did not see it)
            if not started:
                await self.reply(send, exc.status_code, exc.detail)


# ----------------------------------------------------------------------------- work per request
class TooMuchWork(Exception):
    """A request over a work limit: 413 (too large a request) or 429 (too many at once)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class WorkLimits:
    """Bounds on one search request and on concurrent heavy ones.

    max_results : int
        Most results one request may ask for: number of query vectors x k.
    max_result_bytes : int
        Most bytes of results one response may hold, counted while the results are built as the
        characters of the keys returned, plus 40 bytes per result, plus the size of each payload
        returned.
    max_heavy : int
        Most requests asking for more than ``heavy_above`` results that run at once; one more is
        refused with 429 at once (no queue to fill).
    heavy_above : int
        A request asking for more results than this is heavy (the default lets any one query
        with k <= 1000 through).
    """

    max_results: int = 100_000
    max_result_bytes: int = 16 << 20
    max_heavy: int = 2
    heavy_above: int = 1000

    def __post_init__(self):
        for name, lo in (("max_results", 1), ("max_result_bytes", 1024), ("max_heavy", 1), ("heavy_above", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise InputError(f"work limit {name} must be an integer >= {lo}; got {v!r}")
        self._heavy = threading.BoundedSemaphore(self.max_heavy)

    def check_size(self, n_queries: int, k: int) -> None:
        if n_queries * k > self.max_results:
            raise TooMuchWork(413, f"{n_queries} queries x k={k} asks for {n_queries * k} results; the limit is "
                                   f"{self.max_results} per request: send fewer queries per request or a smaller k")

    @contextmanager
    def admit(self, n_queries: int, k: int):
        """Check the size, then hold a heavy-request slot for the block if the request is heavy."""
        self.check_size(n_queries, k)
        if n_queries * k <= self.heavy_above:
            yield
            return
        if not self._heavy.acquire(blocking=False):
            raise TooMuchWork(429, f"{self.max_heavy} large searches are running already; retry shortly, or ask for "
                                   f"at most {self.heavy_above} results (queries x k) per request")
        try:
            yield
        finally:
            self._heavy.release()

    def results(self, keys, scores, payload_of=None):
        """Result rows ``[[{"key", "score"[, "payload"]}, ...], ...]`` of a search (payloads from
        ``payload_of(key)`` when given); 413 once their size passes the limit."""
        budget = self.max_result_bytes
        used = 0
        out = []
        for ks, ss in zip(keys, scores):
            used += sum(map(len, ks)) + 40 * len(ks)
            if used > budget:
                raise self._too_big()
            if payload_of is None:
                out.append([{"key": n, "score": float(s)} for n, s in zip(ks, ss)])
                continue
            row = []
            for n, s in zip(ks, ss):
                p = payload_of(n)
                used += len(repr(p)) if p else 2
                if used > budget:
                    raise self._too_big()
                row.append({"key": n, "score": float(s), "payload": p})
            out.append(row)
        return out

    def _too_big(self):
        return TooMuchWork(413, f"the results would be larger than the limit of {self.max_result_bytes} bytes; ask "
                                "for a smaller k or fewer queries per request")


# ----------------------------------------------------------------------------- connections
BACKLOG = 128  # the listen queue, and the most connections asyncio accepts in one go


def default_max_connections(reserve: int = 128 + BACKLOG) -> int:
    """The file-descriptor limit of this process less ``reserve`` (index files, journals, logs, and
    one burst of accepted connections not yet sorted out), at most 4096 and at least 16."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 16
    except (ImportError, OSError, ValueError):
        soft = 1024
    return max(16, min(4096, soft - reserve))


_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s")


def guarded_protocol(max_connections: int, head_timeout: float):
    """A uvicorn h11 protocol class that (1) closes a connection whose request head has not
    arrived ``head_timeout`` seconds after it opened or after its last response, however slowly
    its bytes trickle in, and (2) keeps at most ``max_connections`` open: a new connection
    beyond that closes the connection idle the longest (one waiting for a request head), or is
    refused with 503 when every connection has a request in progress."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = json.dumps({"error": f"the server holds {max_connections} connections, each with a request in "
                                "progress; retry shortly"}).encode()
    refused = _REFUSED % (len(body), body)

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._ek_timer = None
            self._ek_idle_since = time.monotonic()
            if len(self.connections) > max_connections and not self._ek_make_room():
                log.warning("connection limit (%d) reached with every connection busy; refusing one", max_connections)
                transport.write(refused)
                transport.close()
                return
            self._ek_arm(None)

        def _ek_waiting(self) -> bool:
            return (self.cycle is None or self.cycle.response_complete) and self.conn.their_state is h11.IDLE

        def _ek_make_room(self) -> bool:
            idle = [c for c in self.connections
                    if c is not self and hasattr(c, "_ek_idle_since") and not c.transport.is_closing()
                    and c._ek_waiting()]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c._ek_idle_since)
            oldest.transport.close()
            self.connections.discard(oldest)
            return True

        def _ek_arm(self, cycle) -> None:
            if self._ek_timer is not None:
                self._ek_timer.cancel()
            self._ek_timer = self.loop.call_later(head_timeout, self._ek_head_timeout, cycle)

        def _ek_head_timeout(self, cycle) -> None:
            self._ek_timer = None
            if self.cycle is cycle and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            done = self.cycle
            self._ek_idle_since = time.monotonic()
            super().on_response_complete()
            if not self.transport.is_closing():
                self._ek_arm(done)

        def connection_lost(self, exc) -> None:
            timer = getattr(self, "_ek_timer", None)
            if timer is not None:
                timer.cancel()
                self._ek_timer = None
            super().connection_lost(exc)

    return GuardedH11Protocol


def server_config(app, host: str = "127.0.0.1", port: int = 8000, *, max_connections: int | None = None,
                  head_timeout: float = 10.0, keep_alive: float = 5.0, log_level: str = "info",
                  access_log: bool = False):
    """The ``uvicorn.Config`` the CLI runs ``app`` under (``uvicorn.Server(config).run()``).

    max_connections : int or None
        Most open connections (None: the process's file limit less 256, at most 4096). The
        listen queue is 128 long: asyncio accepts that many at once before any is looked at.
    head_timeout : float, default 10
        Seconds a connection may take to send a complete request head, counted from when it
        opened or from its previous response.
    keep_alive : float, default 5
        Seconds an idle kept-alive connection stays open after a response.
    """
    import uvicorn

    if max_connections is None:
        max_connections = default_max_connections()
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
        raise InputError(f"max_connections must be an integer >= 1; got {max_connections!r}")
    for name, v in (("head_timeout", head_timeout), ("keep_alive", keep_alive)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3600:
            raise InputError(f"{name} must be a number of seconds in (0, 3600]; got {v!r}")
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                          http=guarded_protocol(max_connections, float(head_timeout)), ws="none",
                          lifespan="on", proxy_headers=False, timeout_keep_alive=keep_alive,
                          h11_max_incomplete_event_size=64 << 10, backlog=BACKLOG)
