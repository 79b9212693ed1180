"""What the file readers (embedkit.data, Embeddings) share: the UTF-8 byte-order mark, one message for bytes that are not
UTF-8 (file, line and the ``iconv`` fix), the check of a ``delimiter`` option, and telling an
``.npz``, an ``.npy`` and anything else apart by their first bytes (numpy's own message for a
file that is neither speaks of pickles, which never apply: every reader keeps
``allow_pickle=False``).
"""

from __future__ import annotations

from pathlib import Path

from . import _io
from .errors import InputError, ParseError

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark some editors (Excel, Notepad) put at the start of a file; every text
reader drops it from line 1."""

ICONV = "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip entry; an empty zip archive


def as_path(value, what: str = "path") -> Path:
    """``value`` as a Path; InputError (one line) for anything but a str or os.PathLike."""
    import os

    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{what} must be a str or Path; got {type(value).__name__}")
    return Path(value)


def _binary_kind(raw: bytes, first: bool) -> str | None:
    """What a line of bytes that is not text looks like, or None when it may be text."""
    if first and raw.startswith(NPY_MAGIC):
        return "a NumPy .npy array (binary)"
    if first and raw.startswith(ZIP_MAGIC):
        return "a zip archive such as .npz (binary)"
    if first and raw.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file"
    if b"\x00" in raw:
        return "a binary file"
    return None


def not_utf8(path, line: int | None, exc: UnicodeDecodeError, raw: bytes = b"", binary_fix: str = "") -> ParseError:
    """The ParseError for a line that is not UTF-8: UTF-16 and binary files are named as such
    (with ``binary_fix``, what to give instead), anything else gets the iconv fix."""
    if line == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return ParseError(path, 1, "UTF-16 text, not UTF-8; convert the file (e.g. iconv -f utf-16 -t utf-8)")
    kind = _binary_kind(raw, line == 1)
    if kind:
        return ParseError(path, line, f"{kind}, not UTF-8 text; {binary_fix or 'give a UTF-8 text file'}")
    return ParseError(path, line, f"not valid UTF-8 ({exc.reason} at byte {exc.start}); {ICONV}")


def decode_line(raw: bytes, path, line: int, binary_fix: str = "") -> str:
    """``raw`` (one line's bytes) as text, the byte-order mark dropped on line 1; ParseError
    naming file and line when it is not UTF-8."""
    if line == 1 and raw.startswith(BOM):
        raw = raw[len(BOM):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, line, exc, raw, binary_fix) from None


def decoded_lines(numbered, path, binary_fix: str = ""):
    """``(line number, text)`` for the ``(line number, bytes)`` pairs of :func:`embedkit._io.bounded_lines`:
    the byte-order mark dropped from line 1, ParseError (:func:`not_utf8`) for bytes that are not UTF-8.
    The hot readers (corpus, edge lists) write the same two loops inline: one generator less per line."""
    for no, raw in numbered:  # line 1 alone: the mark
        yield no, decode_line(raw, path, no, binary_fix)
        break
    for no, raw in numbered:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(path, no, exc, raw, binary_fix) from None
        yield no, text


def text_lines(path, what: str, binary_fix: str = ""):
    """``(line number, text)`` of the UTF-8 text file ``path`` (a .gz, .bz2 or .xz one decompressed),
    the byte-order mark dropped, each line at most :data:`embedkit._io.MAX_LINE_BYTES`: InputError for a
    missing file or a directory (``what``: what the file should be, e.g. "a labels file"), ParseError
    naming file and line for bytes that are not UTF-8 (``binary_fix``: what to give instead of a binary
    file)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file; give {what}")
    if p.is_dir():
        raise InputError(f"{path}: is a directory; give {what}")
    try:
        with _io.open_maybe_compressed(p) as fh:
            yield from decoded_lines(_io.bounded_lines(fh, path), path, binary_fix)
    except (OSError, EOFError) as exc:
        raise ParseError(path, None, f"cannot read {what} ({type(exc).__name__}: {exc})") from None


def utf8_error(path, binary_fix: str = "") -> ParseError:
    """The ParseError for the first line of ``path`` (its bytes as stored) that is not UTF-8, found
    by a second, bounded-memory pass after a reader (pandas, csv) failed to decode the file."""
    try:
        with open(path, "rb") as fh:
            for no, raw in _io.bounded_lines(fh, path):
                decode_line(raw, path, no, binary_fix)
    except ParseError as err:
        return err
    except (OSError, EOFError) as exc:
        return ParseError(path, None, f"cannot read the file ({type(exc).__name__}: {exc})")
    return ParseError(path, None, f"not valid UTF-8; {ICONV}")


def check_delimiter(delimiter) -> str | None:
    """A ``delimiter`` option as one character (``"\\t"`` typed as backslash-t is a tab), or None
    to detect it; InputError (one line) for anything else."""
    if delimiter is None:
        return None
    if delimiter == "\\t":
        return "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise InputError(f"delimiter {delimiter!r}: give one character (e.g. ',', ';' or a tab), "
                         "or leave it out to detect it")
    if delimiter in "\r\n\"":
        raise InputError(f"delimiter {delimiter!r} cannot separate fields (it is a quote or a line break); give "
                         "one character such as ',', ';' or a tab, or leave it out to detect it")
    return delimiter


# ---------------------------------------------------------------------------- NumPy files
def numpy_kind(path) -> str:
    """``"npz"``, ``"npy"``, ``"empty"``, ``"text"`` or ``"other"``, from the first bytes of ``path``;
    ``"unknown"`` when it cannot be opened (the caller's own read then says why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return "unknown"
    if not head:
        return "empty"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    return "text" if looks_like_text(head) else "other"


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file (a sample) are UTF-8 text: no NUL, and decodable (a character
    cut at the end of the sample allowed)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4
    return True


def not_numpy(path, want: str, kind: str, fix: str) -> ParseError:
    """ParseError for ``path`` that should be a ``want`` (``"npz"`` or ``"npy"``) file but is ``kind``
    (see :func:`numpy_kind`); ``fix`` says what to give instead."""
    return ParseError(Path(path), None, numpy_problem(want, kind, fix))


def numpy_problem(want: str, kind: str, fix: str) -> str:
    """The text of :func:`not_numpy`, without the file name."""
    if kind == "npy":
        return f"a .npy array (no keys or names), not an .npz archive; {fix}"
    if kind == "npz":
        return f"an .npz (zip) archive, not a .npy array file; {fix}"
    label, lack = ("an .npz archive", "not a zip file") if want == "npz" else ("a .npy array file", "no NUMPY header")
    what = {"empty": "an empty file", "text": f"a text file, {lack}"}.get(kind, lack)
    return f"not {label} ({what}); {fix}"
