"""Progress bars of the word2vec-family trainers (private).

Every phase of a fit gets its own labelled tqdm bar, ``"<trainer>: <phase>"`` (vocabulary,
walks, training), that moves within an epoch and shows a rate and an ETA where the total is
known. :func:`bar` is the one constructor (``show_progress=False``: a disabled bar that draws
nothing). :func:`gensim_log_progress` follows gensim's own progress log lines ("PROGRESS: at
sentence #...", "EPOCH n - PROGRESS: at x% examples/words"), which gensim emits about once a
second in iterator mode; gensim's corpus_file mode reports nothing before an epoch ends.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

_GENSIM_LOGGER = "gensim.models.word2vec"


def bar(desc: str, *, total=None, unit: str = "it", show_progress: bool = True, **kw):
    """A labelled tqdm bar (disabled, drawing nothing, when ``show_progress`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not show_progress,
                dynamic_ncols=True, **kw)


def advance_to(pbar, position: float) -> None:
    """Move ``pbar`` forward to ``position`` (never backwards, never past its total)."""
    if pbar.total is not None:
        position = min(position, pbar.total)
    step = position - pbar.n
    if step > 0:
        pbar.update(step)


class _ProgressFilter(logging.Filter):
    """A logger filter that hands gensim's progress records to ``on_progress(msg, args)`` and lets
    through only what the logger would have let through without us (``keep_level``)."""

    def __init__(self, on_progress, keep_level: int):
        super().__init__()
        self.on_progress = on_progress
        self.keep_level = keep_level

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "PROGRESS: at" in record.msg and isinstance(record.args, tuple):
            try:
                self.on_progress(record.msg, record.args)
            except (TypeError, ValueError, IndexError):   # an unexpected format: progress only, never fail training
                pass
        return record.levelno >= self.keep_level


@contextmanager
def gensim_log_progress(on_progress, enabled: bool = True):
    """While active, call ``on_progress(msg, args)`` for each of gensim's progress log records.

    gensim logs progress at INFO; if its logger is quieter than that, it is lowered to INFO for
    the duration and the extra records are dropped by the filter, so the user's logging output
    is unchanged. Restored on exit.
    """
    if not enabled:
        yield
        return
    logger = logging.getLogger(_GENSIM_LOGGER)
    old_level = logger.level
    keep = logger.getEffectiveLevel()
    flt = _ProgressFilter(on_progress, keep)
    logger.addFilter(flt)
    if keep > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeFilter(flt)
        logger.setLevel(old_level)
