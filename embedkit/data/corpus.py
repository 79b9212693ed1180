"""Text corpora for word2vec: one sentence per line, whitespace-separated tokens.

:class:`Corpus` streams sentences from plain, ``.gz`` or ``.bz2`` files and can be iterated
any number of times (one pass per epoch); it never holds the files in memory. It can also
wrap sentences already in memory (a list of token lists). :func:`as_corpus` turns whatever a
trainer's ``fit`` accepts (a path, a list of paths, a Corpus, a list of token lists) into a
Corpus and refuses one-pass generators with a message saying what to pass instead.
"""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .. import _io
from .._files import decode_line, not_utf8
from ..errors import InputError, ParseError

__all__ = ["Corpus", "as_corpus", "open_text_lines"]

_ONE_PASS = ("{owner} got a one-pass {kind}, but training reads the corpus several times "
             "(once for the vocabulary, once per epoch); pass a list of token lists, a file path, "
             "or ek.Corpus.from_files(paths) instead")


def _opener(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open
    if name.endswith(".bz2"):
        return bz2.open
    return open


def open_text_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a plain/.gz/.bz2 UTF-8 file, line numbers from 1.

    A UTF-8 byte-order mark at the start is dropped. Raises ParseError naming file and line on
    bytes that are not UTF-8 (UTF-16 and binary files are named as such), on a line longer than
    ``embedkit._io.MAX_LINE_BYTES`` (64 MiB; memory stays bounded whatever the file holds, even
    ``/dev/zero``) or on a damaged compressed stream, InputError when the file is missing.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give the text files inside it")
    no = 0
    try:
        with _opener(path)(path, "rb") as fh:
            lines = _io.bounded_lines(fh, path, _io.MAX_LINE_BYTES)
            for no, raw in lines:  # line 1 alone: its byte-order mark (the loop below is the hot one)
                yield no, decode_line(raw, path, no, _BINARY_FIX)
                break
            for no, raw in lines:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise not_utf8(path, no, exc, raw, _BINARY_FIX) from None
                yield no, text
    except (OSError, EOFError, ValueError) as exc:
        if isinstance(exc, (InputError, ParseError)):
            raise
        raise ParseError(path, no + 1, f"cannot read the file ({type(exc).__name__}: {exc})") from None


_BINARY_FIX = "give a text file with one sentence per line (a compressed one named .gz or .bz2)"


def _spool(source: Path, target: Path) -> Path:
    """Copy the pipe or device ``source`` into the plain file ``target`` (a .gz or .bz2 name kept, so it
    is still decompressed when read); one-line InputError when it cannot be read."""
    target = target.with_name(target.name if source.name.lower().endswith((".gz", ".bz2")) else target.name + ".txt")
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            for _, raw in _io.bounded_lines(src, source, _io.MAX_LINE_BYTES):  # /dev/zero: refused, not copied
                dst.write(raw)
    except OSError as exc:
        raise InputError(f"{source}: cannot read the corpus ({exc.strerror or exc}); give a text file") from None
    return target


class Corpus:
    """Sentences (lists of string tokens), re-iterable and streamed.

    Build it with :meth:`from_files` (one sentence per line, tokens split on whitespace,
    blank lines skipped; ``.gz`` and ``.bz2`` are decompressed on the fly) or
    :meth:`from_sentences` (token lists already in memory). Iterating yields one
    ``list[str]`` per sentence; every iteration starts again from the beginning.

    Raises InputError for a missing file or a sentence that is not a list of strings, and
    ParseError (file:line) for bytes that are not UTF-8, while iterating.
    """

    def __init__(self, *, paths: Sequence[Path] | None = None, sentences: Sequence | None = None):
        if (paths is None) == (sentences is None):
            raise InputError("Corpus needs either paths or sentences; use Corpus.from_files or Corpus.from_sentences")
        self._paths = list(paths) if paths is not None else None
        self._sentences = sentences

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_files(cls, paths) -> "Corpus":
        """A corpus streamed from one path or a list of paths (plain, .gz or .bz2 UTF-8 text)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        try:
            paths = [Path(p) for p in paths]
        except TypeError:
            raise InputError(f"Corpus.from_files needs a path or a list of paths; got {type(paths).__name__}") from None
        if not paths:
            raise InputError("Corpus.from_files got an empty list of paths; give at least one file")
        for p in paths:
            if not p.exists():
                raise InputError(f"{p}: no such file")
            if p.is_dir():
                raise InputError(f"{p}: is a directory; give the text files inside it")
        if all(p.is_file() for p in paths):
            return cls(paths=paths)
        # a pipe (<(zcat c.gz), /dev/stdin) or another device can be read once only, and training reads the
        # corpus several times: it is copied once into a temporary folder that lives as long as the corpus
        folder = tempfile.mkdtemp(prefix="embedkit-corpus-")
        try:
            paths = [p if p.is_file() else _spool(p, Path(folder) / f"{i}-{p.name or 'input'}")
                     for i, p in enumerate(paths)]
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        corpus = cls(paths=paths)
        weakref.finalize(corpus, shutil.rmtree, folder, ignore_errors=True)
        return corpus

    @classmethod
    def from_sentences(cls, sentences) -> "Corpus":
        """A corpus over token lists already in memory (a list, tuple or other re-iterable)."""
        _refuse_one_pass(sentences, "Corpus.from_sentences")
        return cls(sentences=sentences)

    # ------------------------------------------------------------------ access
    @property
    def paths(self) -> list[Path] | None:
        """The files of a file corpus, else None."""
        return None if self._paths is None else list(self._paths)

    @property
    def is_files(self) -> bool:
        return self._paths is not None

    def __iter__(self) -> Iterator[list[str]]:
        if self._paths is not None:
            for path in self._paths:
                for _, text in open_text_lines(path):
                    tokens = text.split()
                    if tokens:
                        yield tokens
            return
        for i, sentence in enumerate(self._sentences):
            if isinstance(sentence, (str, bytes)) or not isinstance(sentence, (list, tuple)):
                raise InputError(f"sentence #{i} is {type(sentence).__name__}, not a list of tokens; "
                                 "give a list of token lists such as [['the', 'cat'], ['a', 'dog']]")
            for tok in sentence:
                if not isinstance(tok, str):
                    raise InputError(f"sentence #{i} holds {type(tok).__name__} {tok!r}; tokens must be strings")
            if sentence:
                yield list(sentence)

    def __repr__(self) -> str:
        if self._paths is not None:
            return f"Corpus.from_files({[str(p) for p in self._paths]!r})"
        return f"Corpus.from_sentences(<{type(self._sentences).__name__}>)"


def _refuse_one_pass(data, owner: str) -> None:
    if isinstance(data, Iterator):  # generators, map/filter objects, file handles
        kind = "generator" if hasattr(data, "gi_frame") else f"iterator ({type(data).__name__})"
        raise InputError(_ONE_PASS.format(owner=owner, kind=kind))


def as_corpus(data, owner: str = "fit") -> Corpus:
    """Turn what ``fit`` accepts into a :class:`Corpus`.

    Accepts a Corpus, a path (str or PathLike), a list/tuple of paths, or a list/tuple of
    token lists. Raises InputError for a one-pass generator/iterator, an empty list, a bare
    list of strings that are not files (probably one sentence: wrap it in another list), or
    anything else.
    """
    if isinstance(data, Corpus):
        return data
    if isinstance(data, (str, os.PathLike)):
        return Corpus.from_files([data])
    _refuse_one_pass(data, owner)
    if isinstance(data, (list, tuple)):
        if not data:
            raise InputError(f"{owner} got an empty list; give file paths or a list of token lists")
        first = data[0]
        if isinstance(first, (str, os.PathLike)):
            if not all(isinstance(x, (str, os.PathLike)) for x in data):
                raise InputError(f"{owner} got a list mixing paths and other things; give only paths")
            missing = [str(x) for x in data if not Path(x).exists()]
            if missing and len(missing) == len(data) and all(isinstance(x, str) and " " not in x for x in data):
                raise InputError(f"{missing[0]}: no such file (to train on one sentence given as a list "
                                 "of words, wrap it in another list: [['the', 'cat', ...]])")
            return Corpus.from_files(data)
        if isinstance(first, (list, tuple)):
            return Corpus.from_sentences(data)
        raise InputError(f"{owner} got a list of {type(first).__name__}; give file paths or a list of token lists")
    if isinstance(data, Iterable) and not isinstance(data, (bytes, dict)):
        return Corpus.from_sentences(data)
    raise InputError(f"{owner} needs a path, a list of paths, an ek.Corpus or a list of token lists; "
                     f"got {type(data).__name__}")
