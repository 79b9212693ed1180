"""`embedkit serve`: the HTTP service and web page over the store (FastAPI + uvicorn)."""

from __future__ import annotations

import ipaddress
import logging
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
    p.add_argument("--max-body-mb", type=float, default=8.0, help="largest request body in MiB (default: 8)")
    p.add_argument("--compact-every", type=int, default=1000,
                   help="fold the write journal into a full save after this many writes (default: 1000)")
    p.add_argument("--faiss-threads", type=int, default=1,
                   help="OpenMP threads per FAISS search (default: 1; concurrent requests already run in "
                        "parallel, and one query split over threads is slower on a busy machine)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default: info)")
    add_store_option(p)
    p.set_defaults(func=cmd_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in the range [0, 65535]; got {args.port}")
    if args.max_body_mb <= 0:
        raise InputError(f"--max-body-mb must be > 0; got {args.max_body_mb}")
    if args.compact_every < 1:
        raise InputError(f"--compact-every must be >= 1; got {args.compact_every}")
    if args.faiss_threads < 1:
        raise InputError(f"--faiss-threads must be >= 1; got {args.faiss_threads}")
    token = args.token if args.token is not None else (os.environ.get("EMBEDKIT_TOKEN") or None)
    store = get_store(args)
    from ..serve import create_app

    app = create_app(store.root, names=args.names or None, token=token,
                     max_body_bytes=int(args.max_body_mb * (1 << 20)), compact_every=args.compact_every,
                     faiss_threads=args.faiss_threads)
    import uvicorn

    names = args.names or store.names()
    shown = "[" + args.host + "]" if ":" in args.host else args.host
    out(f"serving {len(names)} index(es) from {store.root}: {', '.join(names) or 'none yet'}")
    out(f"page: http://{shown}:{args.port}/   API docs: http://{shown}:{args.port}/docs")
    out("writes: " + ("enabled (Authorization: Bearer <token>)" if token else "disabled (no --token / $EMBEDKIT_TOKEN)"))
    if not _is_loopback(args.host):
        log.warning("binding %s exposes the service beyond this machine%s", args.host,
                    "; the token travels in clear text over plain HTTP" if token else "")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
