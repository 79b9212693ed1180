"""`embedkit serve`: the HTTP service and web page over the store (FastAPI + uvicorn)."""

from __future__ import annotations

import ipaddress
import logging
import math
import os

from ..errors import InputError
from .common import add_store_option, get_store, out

log = logging.getLogger(__name__)


def register(groups) -> None:
    p = groups.top.add_parser(
        "serve", help="serve indexes over HTTP with a web page at /",
        description="Serve the store's indexes over HTTP: JSON endpoints (OpenAPI at /docs) and a web page at /. "
                    "Write endpoints are disabled unless a token is given, and then require "
                    "'Authorization: Bearer TOKEN'.")
    p.add_argument("names", metavar="NAME", nargs="*", help="indexes to serve (default: every index in the store)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--token", default=None,
                   help="bearer token enabling the write endpoints (default: $EMBEDKIT_TOKEN; none: read-only)")
    p.add_argument("--allow-host", action="append", default=None, metavar="HOST",
                   help="a host name clients may address the server by (the Host header; repeat for more; '*': any). "
                        "Default: localhost, 127.0.0.1, ::1 and the --host address; others get 421, which stops "
                        "DNS-rebinding web pages")
    p.add_argument("--max-body-mb", type=float, default=8.0, help="largest request body in MiB (default: 8)")
    p.add_argument("--max-results", type=int, default=100_000,
                   help="most results one search request may ask for, query vectors x k (default: 100000)")
    p.add_argument("--max-heavy", type=int, default=2,
                   help="most searches asking for over 1000 results that run at once; more get 429 (default: 2)")
    p.add_argument("--max-connections", type=int, default=None,
                   help="most open connections; a new one beyond this closes the longest-idle one "
                        "(default: the process's file limit less 256, at most 4096)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection may take to send its request head, counted from when it opened "
                        "or from its previous response; a request's body gets 3x this (default: 10)")
    p.add_argument("--compact-every", type=int, default=1000,
                   help="fold the write journal into a full save after this many writes (default: 1000)")
    p.add_argument("--faiss-threads", type=int, default=1,
                   help="OpenMP threads per FAISS search (default: 1; concurrent requests already run in "
                        "parallel, and one query split over threads is slower on a busy machine)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default: info)")
    p.add_argument("--backend", default="faiss", choices=["faiss", "milvus"],
                   help="faiss: the store's indexes (default); milvus: the indexes in Milvus at --uri "
                        "(copied there with 'embedkit index push')")
    p.add_argument("--uri", default=None,
                   help="with --backend milvus: a local .db file (embedded milvus-lite) or http://host:19530")
    add_store_option(p)
    p.set_defaults(func=cmd_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """InputError (one line) when ``host:port`` cannot be bound: in use, or an address not of
    this machine. Binds the way uvicorn does (SO_REUSEADDR), then lets go at once."""
    import errno
    import socket

    if port == 0:
        return
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} is not an address of this machine ({exc.strerror}); "
                         "give e.g. 127.0.0.1 or 0.0.0.0") from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is already in use (another 'embedkit serve'?); stop that "
                                 "server or choose another port with --port N") from None
            if exc.errno == errno.EACCES:
                raise InputError(f"no permission to bind port {port} on {host}; ports below 1024 need root: "
                                 "choose another with --port N") from None
            raise InputError(f"cannot bind {host}:{port} ({exc.strerror}); check --host and --port") from None


def cmd_serve(args) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in the range [0, 65535]; got {args.port}")
    if not math.isfinite(args.max_body_mb) or args.max_body_mb <= 0:  # nan and inf pass a plain "<= 0"
        raise InputError(f"--max-body-mb must be a finite number > 0 (MiB); got {args.max_body_mb}")
    if args.compact_every < 1:
        raise InputError(f"--compact-every must be >= 1; got {args.compact_every}")
    if args.faiss_threads < 1:
        raise InputError(f"--faiss-threads must be >= 1; got {args.faiss_threads}")
    if args.max_results < 1 or args.max_heavy < 1:
        raise InputError(f"--max-results and --max-heavy must be >= 1; got {args.max_results} and {args.max_heavy}")
    if args.max_connections is not None and args.max_connections < 1:
        raise InputError(f"--max-connections must be >= 1; got {args.max_connections}")
    if not 0 < args.header_timeout <= 3600:  # false for nan too
        raise InputError(f"--header-timeout must be a finite number of seconds in (0, 3600]; got {args.header_timeout}")
    token = args.token
    if token is None and "EMBEDKIT_TOKEN" in os.environ:
        token = os.environ["EMBEDKIT_TOKEN"]
        if not token:
            raise InputError("$EMBEDKIT_TOKEN is set but empty; unset it to serve read-only, or set it to the token")
    elif token is not None and not token:
        raise InputError("--token is empty; omit it to serve read-only, or give the token")
    from ..serve._limits import LOOPBACK_HOSTS, WorkLimits, server_config

    hosts = args.allow_host
    if hosts is None:
        hosts = list(LOOPBACK_HOSTS)
        if args.host not in ("0.0.0.0", "::", "") and not _is_loopback(args.host):
            hosts.append(args.host)
    if (args.backend == "milvus") != (args.uri is not None):
        raise InputError("--backend milvus needs --uri URI (a .db file or http://host:19530), and --uri needs "
                         "--backend milvus")
    store = get_store(args)
    missing = ""
    if args.backend == "faiss":
        store.check_folder()  # a file given as --store is refused; a folder still to be made is said below
        if not store.root.is_dir():
            missing = (" (the store folder does not exist yet: indexes saved there later are served; check --store "
                       "if you meant an existing store)")
    check_port_free(args.host, args.port)
    from ..serve import create_app

    app = create_app(store.root, names=args.names or None, token=token, backend=args.backend, uri=args.uri,
                     max_body_bytes=int(args.max_body_mb * (1 << 20)), compact_every=args.compact_every,
                     faiss_threads=args.faiss_threads, allowed_hosts=hosts, body_timeout=3 * args.header_timeout,
                     limits=WorkLimits(max_results=args.max_results, max_heavy=args.max_heavy))
    config = server_config(app, host=args.host, port=args.port, max_connections=args.max_connections,
                           head_timeout=args.header_timeout, log_level=args.log_level)
    import uvicorn

    names = args.names or app.state.registry.names()
    shown = "[" + args.host + "]" if ":" in args.host else args.host
    out(f"serving {len(names)} index(es) from {app.state.store.root}: {', '.join(names) or 'none yet'}{missing}")
    out(f"page: http://{shown}:{args.port}/   API docs: http://{shown}:{args.port}/docs")
    out("writes: " + ("enabled (Authorization: Bearer <token>)" if token else "disabled (no --token / $EMBEDKIT_TOKEN)"))
    if not _is_loopback(args.host):
        log.warning("binding %s exposes the service beyond this machine%s", args.host,
                    "; the token travels in clear text over plain HTTP" if token else "")
        if args.allow_host is None:
            log.warning("requests must name one of these hosts: %s; give --allow-host NAME for the names clients use "
                        "(or --allow-host '*')", ", ".join(hosts))
    uvicorn.Server(config).run()
    return 0
