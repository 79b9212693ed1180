"""Reading the columns of a delimited interactions file, with the file line of every row.

Used by :meth:`embedkit.Interactions.from_csv`; kept apart so that module stays about
interactions, not about delimiters and headers.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .. import _io
from .._files import check_delimiter, utf8_error
from ..errors import InputError, ParseError

_DELIMITERS = (",", "\t", ";", "|")


def read_columns(path: Path, cols: dict, delimiter: str | None, header: bool | None):
    """Return ({role: stripped str array}, file line number of each row) for the requested roles
    (user, item and optionally value, timestamp). Blank lines are skipped; a row without a user
    or item id, with the wrong number of fields or longer than ``embedkit._io.MAX_LINE_BYTES``
    (checked in one bounded-memory pass before parsing) raises ParseError naming its line, as do
    bytes that are not UTF-8; a UTF-8 byte-order mark is dropped. A ``delimiter`` that is not one
    character raises InputError."""
    import pandas as pd

    delimiter = check_delimiter(delimiter)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a CSV file")
    _check_lines(path)
    try:
        with _text(path) as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise utf8_error(path, _BINARY_FIX) from None
    if not first.strip():
        raise ParseError(path, 1, "file is empty or starts with a blank line; expected a header or a row")
    sep = delimiter if delimiter is not None else _sniff(first)
    has_header, positions = _resolve_columns(path, _split(first, sep), cols, header,
                                             sample=lambda: _sample_rows(path, sep))
    try:
        df = pd.read_csv(path, sep=sep if sep is not None else r"\s+", header=None, dtype=str,
                         skiprows=1 if has_header else 0, keep_default_na=False, skip_blank_lines=False,
                         engine="c" if sep is not None else "python", quoting=csv.QUOTE_MINIMAL,
                         encoding="utf-8")  # pandas drops a byte-order mark itself
    except UnicodeDecodeError:
        raise utf8_error(path, _BINARY_FIX) from None
    except pd.errors.EmptyDataError:
        raise ParseError(path, None, _NO_ROWS) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) if m else None
        raise ParseError(path, line, f"wrong number of fields ({' '.join(str(exc).split())})") from None
    offset = 2 if has_header else 1  # file line of dataframe row 0
    data = {}
    for name, pos in positions.items():
        if pos >= df.shape[1]:
            raise ParseError(path, offset, f"the {name} column {pos} is missing; the rows have {df.shape[1]} fields")
        col = df[pos].to_numpy(dtype=object)
        data[name] = np.char.strip(np.where(pd.isna(col), "", col).astype(str))
    keep = ~np.all([data[n] == "" for n in data], axis=0)  # blank lines are skipped
    for name in ("user", "item"):
        missing = (data[name] == "") & keep
        if missing.any():
            raise ParseError(path, int(np.argmax(missing)) + offset, f"missing {name} id")
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise ParseError(path, None, _NO_ROWS)
    data = {k: v[rows] for k, v in data.items()}
    _refuse_numeric_table(path, data, positions)
    return data, rows + offset


_BINARY_FIX = "give a delimited text file with one 'user,item[,value]' per line"
_NO_ROWS = "a header but no data rows; add one 'user,item[,value]' row per line below it"


def _text(path: Path):
    """``path`` opened as UTF-8 text (a byte-order mark dropped), decompressed when it ends in .gz, .bz2
    or .xz, as pandas reads it."""
    import io

    return io.TextIOWrapper(_io.open_maybe_compressed(path), encoding="utf-8-sig")


def _check_lines(path: Path) -> None:
    """Refuse a line over the limit before pandas or csv would hold it in memory."""
    try:
        _io.check_line_lengths(path)
    except (OSError, EOFError) as exc:
        raise ParseError(path, None, f"cannot read the file ({type(exc).__name__}: {exc})") from None


def _sniff(line: str) -> str | None:
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else None  # None = runs of whitespace


def _split(line: str, sep: str | None) -> list[str]:
    line = line.rstrip("\r\n")
    parts = line.split() if sep is None else next(csv.reader([line], delimiter=sep))
    return [p.strip() for p in parts]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# whole header fields (lower case, without spaces, '_', '-', '.') that name a column of an interactions
# or feature table; "<word>id" counts too (userId, item_id)
_HEADER_WORDS = frozenset(
    "user item customer client buyer member visitor account person product movie film book song track artist "
    "article page video sku session query doc document rating ratings score count counts qty quantity amount "
    "value weight price timestamp time date datetime ts event action label name id key".split())


def _sample_rows(path: Path, sep, n: int = 20) -> list[list[str]]:
    """Up to ``n`` non-blank lines after the first, split like it (for header detection)."""
    rows = []
    try:
        with _text(path) as fh:
            fh.readline()
            for line in fh:
                if line.strip():
                    rows.append(_split(line, sep))
                    if len(rows) >= n:
                        break
    except UnicodeDecodeError:
        raise utf8_error(path, _BINARY_FIX) from None
    return rows


def _looks_like_header(first: list[str], sample: list[list[str]]) -> bool:
    """Whether a first line that lacks the default column names is a header all the same: a field
    that is text above a column of numbers (``customer,product,qty`` over ``c1,p9,3``; feature
    names over numbers), or every field a usual column name (``customer,product``)."""
    for pos, field in enumerate(first):
        col = [row[pos] for row in sample if pos < len(row)]
        if col and not _is_number(field) and all(_is_number(v) for v in col):
            return True

    def named(field):
        norm = re.sub(r"[\s_.\-]", "", field.lower())
        return norm in _HEADER_WORDS or (norm.endswith("id") and norm[:-2] in _HEADER_WORDS)

    return bool(first) and all(named(f) for f in first)


def _refuse_numeric_table(path, data: dict, positions: dict) -> None:
    """A user and an item column of numbers with fractions are not ids: a feature or vector table."""
    import pandas as pd

    cols = {}
    for role in ("user", "item"):
        vals = pd.to_numeric(pd.Series(data[role][:1000]), errors="coerce").to_numpy(dtype=np.float64)
        if not len(vals) or np.isnan(vals).any() or (vals == np.round(vals)).all():
            return
        cols[role] = vals[np.flatnonzero(vals != np.round(vals))[0]]
    raise InputError(f"{path}: the user column {positions['user']} and the item column {positions['item']} hold "
                     f"numbers with fractions ({cols['user']:g}, {cols['item']:g}): this looks like a table of "
                     "features or vectors, not interactions (one 'user,item[,value]' per line)")


def _resolve_columns(path, first, cols, header, sample=lambda: []):
    """Return (has_header, {role: position}) for the requested user/item/value/timestamp columns.
    ``sample()`` gives some rows after the first, for header detection."""
    wanted = {k: v for k, v in cols.items() if v is not None}
    for role, col in wanted.items():
        if isinstance(col, bool) or not isinstance(col, (str, int)):
            raise InputError(f"the {role} column must be a name (str) or a 0-based position (int); got {col!r}")
    by_name = {k: v for k, v in wanted.items() if isinstance(v, str)}
    if header is None:
        if by_name:
            header = all(v in first for v in by_name.values())
            if not header:
                defaults = (by_name.get("user") == "user" and by_name.get("item") == "item"
                            and set(by_name) <= {"user", "item"})
                if not defaults:
                    missing = [v for v in by_name.values() if v not in first]
                    raise ParseError(path, 1, f"no column named {missing[0]!r} in the header {first}; "
                                              "name an existing column or give 0-based positions")
                rows = sample()
                if _looks_like_header(first, rows):
                    cells = [v for row in rows for v in row]
                    if cells and all(_is_number(v) for v in cells) and any(not float(v).is_integer() for v in cells):
                        raise ParseError(path, 1, f"the header ({', '.join(first)}) is over columns of numbers with "
                                                  "fractions: this looks like a table of features or vectors, not "
                                                  "interactions; give a file with a user and an item column "
                                                  "(user,item[,value]), named by user=/item= (CLI: --user/--item)")
                    guess = [f for f in first if not _is_number(f)][:2] or first[:2]
                    hint = f"user={guess[0]!r}, item={guess[-1]!r}" if len(guess) > 1 else "user=..., item=..."
                    raise ParseError(path, 1, f"the first line is a header ({', '.join(first)}) without the default "
                                              f"columns 'user' and 'item'; name the columns to use: {hint} "
                                              f"(CLI: --user {guess[0]} --item {guess[-1]}), or header=False "
                                              "if that line is data")
        else:
            probes = [wanted[r] for r in ("value", "timestamp") if r in wanted]
            # with positions only, a header shows as text where numbers are expected
            header = any(p < len(first) and not _is_number(first[p]) for p in probes)
    positions = {}
    for role, col in wanted.items():
        if isinstance(col, str):
            if header:
                if col not in first:
                    raise ParseError(path, 1, f"no column named {col!r} in the header {first}")
                positions[role] = first.index(col)
            else:  # headerless default names
                positions[role] = {"user": 0, "item": 1}[role]
        else:
            if col < 0 or col >= len(first):
                raise ParseError(path, 1, f"the {role} column position {col} is out of range; "
                                          f"the line has {len(first)} fields")
            positions[role] = col
    if len(set(positions.values())) != len(positions):
        raise InputError(f"two roles read the same column: {positions}")
    return bool(header), positions
