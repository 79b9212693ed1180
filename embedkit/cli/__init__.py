"""The ``embedkit`` command line.

Each area adds its verbs from its own module through ``register(groups)``; ``main`` turns
every user-facing error into one line on stderr and a non-zero exit status.

Verbs that take the training options (``--nproc``) run distributed (see
:mod:`embedkit.distributed.cli`): ``--nproc N`` starts N local ranks of the same command line,
and under torchrun the process group is joined before the verb runs; ranks other than 0 print
nothing on stdout and prefix their error line with ``rank R:``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from contextlib import contextmanager
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

    def parse_args(self, args=None, namespace=None):
        """As argparse, but arguments no parser took are reported by the deepest sub-command given
        (``embedkit train word2vec: unrecognized arguments: --dimm 8; did you mean --dim?``), whose
        --help lists its options, instead of by ``embedkit``."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = _chosen_subparser(self, ns)
            parser.error(f"unrecognized arguments: {' '.join(extras)}{_close_option(parser, extras)}")
        return ns


def _chosen_subparser(parser: argparse.ArgumentParser, ns) -> argparse.ArgumentParser:
    """The parser of the most specific sub-command named on the command line (``parser`` if none)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(ns, sub.dest, None) if sub is not None and sub.dest != argparse.SUPPRESS else None
        if not isinstance(chosen, str) or chosen not in sub.choices:
            return parser
        parser = sub.choices[chosen]


def _close_option(parser: argparse.ArgumentParser, extras) -> str:
    """``; did you mean --dim?`` for the first unknown option close to one of ``parser``'s (difflib)."""
    from difflib import get_close_matches

    known = [o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings if o.startswith("--")]
    for arg in extras:
        if arg.startswith("--") and len(arg) > 2:
            close = get_close_matches(arg.split("=", 1)[0], known, n=1)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


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


@contextmanager
def _one_line_warnings():
    """Warnings printed while a command runs read ``warning: MESSAGE`` on one line, not Python's two lines with
    a source file, line number and code. Only the formatting changes (``warnings.formatwarning``): filters,
    and the recording of ``warnings.catch_warnings(record=True)`` or ``pytest.warns``, stay as they are."""
    def one_line(message, category, filename, lineno, line=None):
        plain = category is UserWarning or category.__module__.split(".")[0] == "embedkit"
        kind = "" if plain else f"{category.__name__}: "  # e.g. a library's DeprecationWarning stays recognisable
        return f"warning: {kind}{' '.join(str(message).split())}\n"

    if os.environ.get("EMBEDKIT_DEBUG"):  # Python's own format, with the source line
        yield
        return
    saved = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = saved


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
    with _one_line_warnings():
        return _run(args, argv, func)


def _run(args, argv, func) -> int:
    job = None
    try:
        if hasattr(args, "nproc"):  # a training verb: --nproc N, or a rank of a torchrun job
            from ..distributed import cli as dist_cli

            if dist_cli.wants_launch(args):
                return dist_cli.run_local(argv, args.nproc)
            job = dist_cli.enter_job(args)
        code = int(func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's final flush
        return code
    except KeyboardInterrupt as exc:
        _report("error: interrupted", exc, _in_job(args))
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except (EmbedkitError, ValueError, KeyError, OSError, ImportError) as exc:
        if os.environ.get("EMBEDKIT_DEBUG"):
            raise
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        msg = " ".join(msg.split()) or type(exc).__name__
        _report(f"error: {msg}", exc, _in_job(args))
        return 1
    finally:
        if job is not None:
            job.close()


def _in_job(args) -> bool:
    """A training verb (it takes --nproc) run as a rank of a distributed job, or a process group joined."""
    if hasattr(args, "nproc") and os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        return True
    if "embedkit.distributed" in sys.modules:
        from ..distributed import is_distributed

        return is_distributed()
    return False


def _report(line: str, exc: BaseException, in_job: bool = False) -> None:
    """One error line on stderr; in a distributed job (``in_job``: a training verb under ``WORLD_SIZE`` > 1),
    ``rank R:`` in front on ranks other than 0, and written where the launcher that started this rank reads
    it (see :mod:`embedkit.distributed.cli`). Other verbs, even run from a rank, report as one process."""
    if not in_job:
        print(line, file=sys.stderr)
        return
    from ..distributed import cli as dist_cli

    dist_cli.report_error(dist_cli.error_line(line[len("error: "):]), exc)


def _closed_pipe() -> int:
    """The reader of stdout went away (``embedkit query ... | head -1``): stop quietly, as Unix
    tools do. stdout is pointed at /dev/null so that Python's final flush does not report it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor behind stdout (captured, embedded)
        pass
    return 141  # 128 + SIGPIPE: what a shell reports for a writer its reader left


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
