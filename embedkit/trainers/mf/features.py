"""Side features of users or items for the hybrid recommender (:mod:`.hybrid`): categorical
columns, multi-valued tags and numeric columns, read from a pandas DataFrame or a CSV file.

    feats = Features.from_csv("items.csv", id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    feats.keys              # the ids, in file order
    feats.names             # "genre=drama", "tags=red", "price", ... (the feature vocabulary)
    feats.matrix            # ids x features CSR: 1 per category / tag, the standardised number
    feats.rows(df)          # the same encoding for new ids (unknown categories and tags ignored)
    feats.payload()         # one dict per id ({"genre": "drama", "tags": [...], "price": 12.5}) for filters

Encoding: a categorical column gives one feature per value ("col=value"); a tags column holds
several values separated by ``sep`` ("red|blue"), one feature each, weighted 1/number of tags
so an item with many tags does not outweigh one with few; a numeric column is standardised
with the training mean and standard deviation (missing values: 0, the mean). Missing
categories/tags add nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...errors import InputError

__all__ = ["Features"]


def _frame(data, what: str):
    import pandas as pd

    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise InputError(f"{what}: no such file {str(path)!r}; give a CSV with a header row")
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except Exception as exc:  # parser errors: one line
            raise InputError(f"{what}: cannot read {str(path)!r} as CSV ({type(exc).__name__}: {exc})") from None
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):  # {id: {column: value}}
        return pd.DataFrame.from_dict(data, orient="index").rename_axis("__id__").reset_index()
    raise InputError(f"{what} must be a pandas DataFrame, a CSV path or a dict {{id: {{column: value}}}}; "
                     f"got {type(data).__name__}")


class Features:
    """Encoded side features of a set of ids (see the module text). Build with
    :meth:`from_dataframe` / :meth:`from_csv`; ``rows`` encodes new ids the same way."""

    def __init__(self, spec: dict, names: list[str], keys: list[str], matrix, payload: list[dict]):
        self.spec = spec
        self.names = list(names)
        self._col = {n: j for j, n in enumerate(self.names)}
        self.keys = list(keys)
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self._payload = payload

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dataframe(cls, df, id: str, categorical=(), tags=(), numeric=(), sep: str = "|") -> "Features":
        """Encode ``df`` (one row per id in column ``id``) with the given column kinds."""
        df = _frame(df, "features")
        if isinstance(categorical, str):
            categorical = [categorical]
        if isinstance(tags, str):
            tags = [tags]
        if isinstance(numeric, str):
            numeric = [numeric]
        id_col = "__id__" if id not in df.columns and "__id__" in df.columns else id
        missing = [c for c in [id_col, *categorical, *tags, *numeric] if c not in df.columns]
        if missing:
            raise InputError(f"features: no column {missing[0]!r}; the table has {list(df.columns)}")
        if not (categorical or tags or numeric):
            raise InputError("features: name at least one column: categorical=[...], tags=[...] or numeric=[...]")
        keys = [str(k) for k in df[id_col].tolist()]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise InputError(f"features: id {dup!r} appears more than once in column {id!r}; one row per id")
        stats = {}
        for c in numeric:
            vals = _numbers(df[c], c)
            ok = vals[np.isfinite(vals)]
            mean = float(ok.mean()) if len(ok) else 0.0
            sd = float(ok.std()) if len(ok) > 1 else 1.0
            stats[c] = [mean, sd if sd > 0 else 1.0]
        names: list[str] = []
        for c in categorical:
            names += sorted({f"{c}={v}" for v in df[c].tolist() if _present(v)})
        for c in tags:
            names += sorted({f"{c}={t}" for v in df[c].tolist() if _present(v) for t in _split(v, sep)})
        names += list(numeric)
        spec = {"id": id, "categorical": list(categorical), "tags": list(tags), "numeric": list(numeric),
                "sep": sep, "stats": stats}
        out = cls(spec, names, keys, sp.csr_matrix((len(keys), len(names))), [])
        out.matrix, out._payload = out._encode(df)
        return out

    @classmethod
    def from_csv(cls, path, id: str, categorical=(), tags=(), numeric=(), sep: str = "|") -> "Features":
        """:meth:`from_dataframe` of a CSV file with a header row."""
        return cls.from_dataframe(_frame(path, "features"), id, categorical, tags, numeric, sep)

    def rows(self, data) -> tuple[list[str], sp.csr_matrix, list[dict]]:
        """(ids, CSR over this vocabulary, payloads) of new rows (DataFrame, CSV path or dict
        {id: {column: value}}); unknown categories and tags are ignored."""
        df = _frame(data, "features")
        id_col = self.spec["id"] if self.spec["id"] in df.columns else "__id__"
        if id_col not in df.columns:
            raise InputError(f"features: no id column {self.spec['id']!r}; the table has {list(df.columns)}")
        for c in self.spec["categorical"] + self.spec["tags"] + self.spec["numeric"]:
            if c not in df.columns:
                df = df.assign(**{c: None})
        m, payload = self._encode(df)
        return [str(k) for k in df[id_col].tolist()], m, payload

    def _encode(self, df):
        rows, cols, vals = [], [], []
        payload = [dict() for _ in range(len(df))]
        sep = self.spec["sep"]
        for c in self.spec["categorical"]:
            for r, v in enumerate(df[c].tolist()):
                if _present(v):
                    payload[r][c] = _scalar(v)
                    j = self._col.get(f"{c}={v}")
                    if j is not None:
                        rows.append(r), cols.append(j), vals.append(1.0)
        for c in self.spec["tags"]:
            for r, v in enumerate(df[c].tolist()):
                if not _present(v):
                    continue
                tags = _split(v, sep)
                payload[r][c] = tags
                for t in tags:
                    j = self._col.get(f"{c}={t}")
                    if j is not None:
                        rows.append(r), cols.append(j), vals.append(1.0 / len(tags))
        for c in self.spec["numeric"]:
            mean, sd = self.spec["stats"][c]
            for r, x in enumerate(_numbers(df[c], c)):
                if np.isfinite(x):
                    payload[r][c] = float(x)
                    rows.append(r), cols.append(self._col[c]), vals.append((x - mean) / sd)
        m = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(df), len(self.names)))
        m.sum_duplicates()
        return m, payload

    def payload(self) -> list[dict]:
        """One dict per id of its raw feature values (str, float, list of str for tags), for filters."""
        return [dict(p) for p in self._payload]

    def aligned(self, keys) -> tuple[sp.csr_matrix, list[dict]]:
        """(CSR, payloads) with one row per key of ``keys`` (ids without features: empty rows)."""
        where = {k: i for i, k in enumerate(self.keys)}
        idx = np.array([where.get(k, -1) for k in keys], dtype=np.int64)
        have = idx >= 0
        m = sp.csr_matrix((len(keys), len(self.names)), dtype=np.float32)
        if have.any():
            sel = sp.csr_matrix(self.matrix[idx[have]])
            placer = sp.csr_matrix((np.ones(int(have.sum()), np.float32), (np.flatnonzero(have), np.arange(int(have.sum())))),
                                   shape=(len(keys), int(have.sum())))
            m = (placer @ sel).tocsr()
        payload = [dict(self._payload[i]) if i >= 0 else {} for i in idx]
        return m, payload

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> str:
        return json.dumps({"spec": self.spec, "names": self.names})

    @classmethod
    def from_json(cls, text: str) -> "Features":
        d = json.loads(text)
        return cls(d["spec"], d["names"], [], sp.csr_matrix((0, len(d["names"]))), [])


def _present(v) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and np.isnan(v):
        return False
    return str(v) != ""


def _scalar(v):
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v if isinstance(v, (int, float, bool)) else str(v)


def _split(v, sep: str) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(t) for t in v if str(t)]
    return [t.strip() for t in str(v).split(sep) if t.strip()]


def _numbers(col, name: str) -> np.ndarray:
    import pandas as pd

    vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(vals) & np.array([_present(v) for v in col.tolist()], dtype=bool))
    if len(bad):
        raise InputError(f"features: numeric column {name!r} row {int(bad[0]) + 1} holds {col.tolist()[bad[0]]!r}, "
                         "not a number; fix the value or declare the column categorical")
    inf = np.flatnonzero(np.isinf(vals))
    if len(inf):
        raise InputError(f"features: numeric column {name!r} row {int(inf[0]) + 1} holds {vals[inf[0]]}; give a finite "
                         "number (or leave it empty for no value)")
    return vals
