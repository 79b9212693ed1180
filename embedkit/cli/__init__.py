"""The ``embedkit`` command line.

Each area adds its verbs from its own module through ``register(groups)``; ``main`` turns
every user-facing error into one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import SimpleNamespace

from .. import __version__
from ..errors import EmbedkitError

# Modules that add verbs; each defines register(groups).
_AREAS = (
    "embedkit.cli.index_cmds",
    "embedkit.cli.word2vec",
    "embedkit.cli.node2vec",
    "embedkit.cli.mf",
    "embedkit.cli.encoders",
    "embedkit.cli.plot",
    "embedkit.cli.serve",
    "embedkit.cli.demo",
    "embedkit.cli.export",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() controls the message and status."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="embedkit", description="Train embeddings and search them with FAISS.")
    parser.add_argument("--version", action="version", version=f"embedkit {__version__}")
    parser.add_argument("--store", default=None,
                        help="directory holding saved indexes (default: $EMBEDKIT_STORE or ./indexes)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    train = top.add_parser("train", help="train embeddings and save them as an index").add_subparsers(
        dest="trainer", metavar="TRAINER", parser_class=_Parser)
    evaluate = top.add_parser("eval", help="evaluate saved embeddings").add_subparsers(
        dest="evaluation", metavar="WHAT", parser_class=_Parser)
    groups = SimpleNamespace(top=top, train=train, eval=evaluate)
    for module in _AREAS:
        importlib.import_module(module).register(groups)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        # a group without its sub-command, or no command at all
        sub = {"train": "TRAINER", "eval": "WHAT", "index": "ACTION"}.get(args.command)
        if sub:
            print(f"error: embedkit {args.command}: missing {sub} (see 'embedkit {args.command} --help')",
                  file=sys.stderr)
        else:
            parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (EmbedkitError, ValueError, KeyError, OSError, ImportError) as exc:
        if os.environ.get("EMBEDKIT_DEBUG"):
            raise
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        msg = " ".join(msg.split()) or type(exc).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
