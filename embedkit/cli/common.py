"""Helpers shared by the CLI verbs: the store, common options, saving a trained result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._knn import METRICS
from ..errors import InputError


def get_store(args):
    """The Store selected by --store, $EMBEDKIT_STORE, or ./indexes."""
    from ..store import Store

    return Store(getattr(args, "store", None))


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """--store on a sub-command too, so it may follow the verb (``embedkit query --store D ...``)."""
    parser.add_argument("--store", default=argparse.SUPPRESS,
                        help="directory holding saved indexes (default: $EMBEDKIT_STORE or ./indexes)")


def add_train_options(parser: argparse.ArgumentParser, *, epochs: int | None = None, dim: int | None = None) -> None:
    """Options every ``embedkit train X`` takes."""
    parser.add_argument("--name", required=True, help="name of the index to write under the store")
    parser.add_argument("--metric", default="cosine", choices=list(METRICS),
                        help="index metric (default: cosine)")
    parser.add_argument("--kind", default="auto", type=kind_argument,
                        help="index kind: flat|hnsw|ivf|ivfpq|auto or a FAISS factory string (default: auto)")
    if dim is not None:
        parser.add_argument("--dim", type=int, default=dim, help=f"vector dimension (default: {dim})")
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default: {epochs})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--force", action="store_true", help="replace an existing index of that name")
    parser.add_argument("--nproc", type=nproc_argument, default=1, metavar="N",
                        help="train as N local processes (torch.distributed over gloo, or NCCL with one per GPU); "
                             "for several machines use torchrun (see docs/distributed.md) (default: 1)")
    add_store_option(parser)


def add_sync_option(parser: argparse.ArgumentParser) -> None:
    """``--sync-every F`` of the skip-gram family's train verbs (used with --nproc / torchrun), defaulting to
    the trainers' own default (importing it loads neither torch nor gensim)."""
    from ..trainers.sgns.distributed import SYNC_EVERY

    parser.add_argument("--sync-every", type=float, default=SYNC_EVERY, metavar="F",
                        help="with --nproc N or under torchrun: average the ranks' vectors every F of an epoch, "
                             f"0 < F <= 1 (default: {SYNC_EVERY}); ignored in one process")


def nproc_argument(text: str) -> int:
    """argparse ``type=`` of ``--nproc``: a whole number from 1 to four per CPU core."""
    from .._device import cpu_count

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--nproc takes a whole number of processes; got {text!r}") from None
    top = 4 * cpu_count()
    if n < 1:
        raise argparse.ArgumentTypeError(f"--nproc must be >= 1; got {n}")
    if n > top:
        raise argparse.ArgumentTypeError(f"--nproc {n} is more than 4 processes per CPU core here ({top}); "
                                         "for more ranks use several machines with torchrun (see docs/distributed.md)")
    return n


def kind_argument(text: str) -> str:
    """argparse ``type=`` of ``--kind``: a typo ("hnws") is a usage error before any data is read or trained."""
    from ..index._factory import check_kind

    try:
        return check_kind(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def save_trained(args, trainer, *, meta=None, metric=None, kind=None):
    """Write a fitted trainer into the store as ``args.name`` with :meth:`Trainer.to_store`
    (its vectors indexed, the model beside them, a manifest with trainer, parameters and loss
    history); refuses to replace an index unless --force. Returns the directory.

    In a distributed job rank 0 alone writes (the others wait for it and get None), see
    :func:`embedkit.distributed.main_writes`."""
    from ..distributed import main_writes

    return main_writes(_save_trained, args, trainer, meta=meta, metric=metric, kind=kind,
                       what=f"the store entry {args.name!r}")


def _save_trained(args, trainer, *, meta, metric, kind):
    store = get_store(args)
    refuse_existing(store, args.name, getattr(args, "force", False))
    return trainer.to_store(args.name, store, metric=metric or getattr(args, "metric", None),
                            kind=kind or getattr(args, "kind", "auto"), overwrite=True, meta=meta,
                            show_progress=not getattr(args, "no_progress", False))


def add_renamed_option(parser: argparse.ArgumentParser, old: str, new: str, type=float) -> None:
    """Accept ``--OLD`` (hidden from --help) as the old name of ``--NEW``; read it with :func:`renamed_option`."""
    parser.add_argument(old, type=type, default=None, help=argparse.SUPPRESS)


def renamed_option(args, new: str, old: str, default=None):
    """The value of ``--NEW``, or of its old name ``--OLD`` with a note on stderr; both given is an error.

    ``new``/``old`` are argparse destinations (``min_lr``); ``default`` applies when neither was given."""
    value, legacy = getattr(args, new, None), getattr(args, old, None)
    flag_new, flag_old = "--" + new.replace("_", "-"), "--" + old.replace("_", "-")
    if legacy is None:
        return default if value is None else value
    if value is not None:
        raise InputError(f"{flag_old} is the old name of {flag_new}; give only {flag_new}")
    sys.stderr.write(f"warning: {flag_old} is renamed {flag_new} and will be removed in a later release\n")
    return legacy


def out(text: str = "") -> None:
    """Print a line of command output (the CLI's stdout; the library itself never prints).

    In a distributed job (a process group is initialised) only rank 0 prints: N ranks would repeat
    every line. A process whose environment merely names a rank (a command started from a torchrun
    rank) prints as a single process does."""
    from ..distributed import is_distributed, world

    if not is_distributed() or world().rank == 0:
        sys.stdout.write(text + "\n")


def refuse_existing(store, name: str, force: bool) -> None:
    """Training or building never replaces an index silently: --force says so. Called before any work
    is done, it also refuses a store where nothing could be saved (a file, a read-only folder)."""
    store.check_save_name(name)
    store.check_writable()
    if store.exists(name) and not force:
        raise InputError(f"an index named {name!r} already exists in the store {store.root.resolve()}; pass --force "
                         "to replace it")


def check_k(k: int) -> int:
    """The -k of query/recommend/eval: at least 1, with a one-line message."""
    if k < 1:
        raise InputError(f"-k must be >= 1; got {k}")
    return k


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    return p


def ignored_option(message: str) -> None:
    """Say on one line (``warning: MESSAGE``, see :func:`embedkit.cli._one_line_warnings`) that an option
    given on the command line has no effect here; the command goes on without it."""
    import warnings

    from ..errors import IgnoredParameterWarning

    warnings.warn(message, IgnoredParameterWarning, stacklevel=2)
