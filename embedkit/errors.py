"""Exceptions raised by embedkit.

Every error meant for a user is a subclass of :class:`EmbedkitError` and also of the
built-in type a Python user would expect (``ValueError``, ``KeyError``...), so both
``except ValueError`` and ``except embedkit.EmbedkitError`` work. Messages are one line
that names the problem and the fix.
"""

from __future__ import annotations


class EmbedkitError(Exception):
    """Base class of embedkit's user-facing errors."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class InputError(EmbedkitError, ValueError):
    """Bad data or a bad parameter value."""


class ParseError(InputError):
    """A line of an input file could not be read; the message names file and line."""

    def __init__(self, path, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line


class MissingKeyError(EmbedkitError, KeyError):
    """A key (word, node, user, item) that is not present."""


class StoreError(EmbedkitError, OSError):
    """A saved index or store is missing, damaged or of a newer format."""


class NotFittedError(EmbedkitError, RuntimeError, AttributeError):
    """A trainer method or fitted attribute needs fit() first (an AttributeError too, so that
    ``hasattr(model, "embeddings_")`` is False before fit)."""


class IgnoredParameterWarning(UserWarning):
    """A parameter was set to a non-default value that the chosen method or variant does not use."""
