"""Pictures of embeddings: a 2-D map coloured by label, and the per-epoch training loss.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global state), so it
works on servers and from several threads. The map projects vectors with PCA (exact, fast) or
t-SNE (van der Maaten and Hinton 2008, "Visualizing Data using t-SNE"; slower, keeps local
neighbourhoods); cosine indexes are projected after normalising each vector to unit length.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ._arrays import as_vectors
from ._io import atomic_write_bytes
from ._knn import unit_rows
from ._validation import check_choice, check_int, check_seed
from .errors import InputError, ParseError

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne")
FORMATS = (".png", ".svg", ".pdf")
MAX_COLOURS = 20
EXACT_TSNE_LIMIT = 500
UNLABELLED = "(no label)"
OTHER = "(other labels)"


def read_labels(path) -> dict[str, str]:
    """``KEY LABEL`` per line (tab, comma or whitespace between them); '#' starts a comment line.

    Raises ParseError naming the line for a line with a key but no label.
    """
    labels: dict[str, str] = {}
    p = Path(path)
    with open(p, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if "\t" in line:
                parts = line.split("\t", 1)
            elif "," in line:
                parts = line.split(",", 1)
            else:
                parts = line.split(None, 1)
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise ParseError(p, n, f"expected 'KEY LABEL', got {line[:60]!r}")
            labels[parts[0].strip()] = parts[1].strip()
    if not labels:
        raise InputError(f"{p}: no labels found; write one 'KEY LABEL' per line")
    return labels


def project_2d(vectors, method: str = "pca", seed: int = 0, normalize: bool = False) -> np.ndarray:
    """(n, 2) coordinates of the rows of ``vectors`` by PCA or t-SNE."""
    method = check_choice("plot", "method", method, METHODS)
    x = as_vectors(vectors).astype(np.float64)
    if len(x) < 2:
        raise InputError(f"a map needs at least 2 vectors; got {len(x)}")
    if normalize:
        x = unit_rows(x)
    if x.shape[1] == 1:
        return np.hstack([x, np.zeros_like(x)])
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        # fix the sign of each axis so the same vectors always give the same picture
        signs = np.sign(xy[np.abs(xy).argmax(axis=0), [0, 1]])
        return xy * np.where(signs == 0, 1, signs)
    from sklearn.manifold import TSNE

    if len(x) < 5:
        raise InputError(f"t-SNE needs at least 5 vectors; got {len(x)} (use method='pca')")
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    # exact gradients for small maps: Barnes-Hut's thread pool costs more than it saves there
    method_ = "exact" if len(x) <= EXACT_TSNE_LIMIT else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                method=method_).fit_transform(x)


def _natural(text: str) -> list:
    """Sort key that puts 'digit-2' before 'digit-10'."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text)]


def _colour_groups(names: list[str]) -> tuple[list[str], dict[str, tuple]]:
    """Label order (most frequent first) and a colour per label; rare labels beyond 19 pool as 'other'."""
    from matplotlib import colormaps

    counts = Counter(n for n in names if n != UNLABELLED)
    if len(counts) > MAX_COLOURS:
        ordered = [n for n, _ in counts.most_common(MAX_COLOURS - 1)] + [OTHER]
    else:
        ordered = sorted(counts, key=_natural)
    cmap = colormaps["tab10" if len(ordered) <= 10 else "tab20"]
    colours = {name: cmap(i % cmap.N) for i, name in enumerate(ordered)}
    colours[UNLABELLED] = (0.72, 0.72, 0.72, 1.0)
    return ordered, colours


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _check_out(out) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"{out}: choose a file ending in {', '.join(FORMATS)}")
    if out.parent and not out.parent.exists():
        raise InputError(f"{out.parent}: no such directory")
    return out


def _save(fig, out: Path) -> None:
    """Render into memory, then replace ``out`` atomically (no half-written picture after a crash)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lower().lstrip("."))
    atomic_write_bytes(out, buf.getvalue())


def plot_map(emb, out, labels=None, method: str = "pca", *, title: str | None = None, max_points: int = 5000,
             seed: int = 0, normalize: bool = True, annotate: int = 40) -> dict:
    """Draw a 2-D map of ``emb`` (Embeddings) into ``out`` (.png, .svg or .pdf), coloured by label.

    Parameters
    ----------
    labels : dict key -> label, or None
        Keys missing from it are drawn grey as "(no label)"; beyond 20 labels the rarest pool.
    method : {"pca", "tsne"}, default "pca"
    max_points : int, default 5000
        A seeded random sample of this many items is drawn when the index holds more.
    normalize : bool, default True
        Project unit-length vectors (right for cosine indexes).
    annotate : int, default 40
        Write each key beside its point when at most this many points are drawn.

    Returns a dict with ``keys``, ``xy`` (n, 2), ``labels`` (per point) and ``path``.
    Raises InputError for a bad method, file type, or too few vectors.
    """
    out = _check_out(out)
    method = check_choice("plot", "method", method, METHODS)
    max_points = check_int("plot", "max_points", max_points, 2)
    seed = check_seed("plot", seed)
    keys = list(emb.keys)
    vectors = emb.vectors
    if len(keys) > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(len(keys), size=max_points, replace=False))
        log.info("drawing a random sample of %d of %d items", max_points, len(keys))
        keys, vectors = [keys[i] for i in pick], vectors[pick]
    xy = project_2d(vectors, method=method, seed=seed, normalize=normalize)
    names = [labels.get(k, UNLABELLED) for k in keys] if labels else [UNLABELLED] * len(keys)
    if labels:
        matched = sum(n != UNLABELLED for n in names)
        if matched == 0:
            raise InputError("none of the labelled keys is in the index; check the labels file's first column")
        ordered, colours = _colour_groups(names)
        kept = set(ordered)
        names = [n if n in kept or n == UNLABELLED else OTHER for n in names]
    else:
        ordered, colours = [], {UNLABELLED: (0.16, 0.39, 0.75, 1.0)}

    fig = _figure(9.0 if labels else 7.5, 6.5)
    ax = fig.add_subplot(1, 1, 1)
    size = float(np.clip(8000 / max(len(keys), 1), 5, 60))
    groups = [UNLABELLED] + ordered
    arr = np.array(names, dtype=object)
    for name in groups:
        mask = arr == name
        if not mask.any():
            continue
        shown = f"{name} ({int(mask.sum())})" if labels else None
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colours[name], label=shown,
                   alpha=0.85, linewidths=0.3, edgecolors="white", zorder=1 if name == UNLABELLED else 2)
    if len(keys) <= annotate:
        for (x, y), k in zip(xy, keys):
            ax.annotate(k, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7, color="#333333")
    label_name = {"pca": "PCA", "tsne": "t-SNE"}[method]
    ax.set_xlabel(f"{label_name} 1")
    ax.set_ylabel(f"{label_name} 2")
    total = len(emb.keys)
    sub = f" ({len(keys)} of {total} items)" if len(keys) < total else f" ({total} items)"
    ax.set_title((title or "embedding map") + sub)
    ax.grid(True, alpha=0.25)
    if labels:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="label",
                  markerscale=max(1.0, 30 / size) ** 0.5)
    fig.tight_layout()
    _save(fig, out)
    return {"keys": keys, "xy": xy, "labels": names, "path": out}


def plot_loss(loss_history, out, *, title: str | None = None) -> Path:
    """Draw the per-epoch training loss into ``out`` (.png, .svg or .pdf).

    Raises InputError when the history is empty or holds non-finite values.
    """
    out = _check_out(out)
    try:
        loss = np.asarray(list(loss_history or []), dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("the loss history must be a list of numbers") from None
    if loss.ndim != 1 or len(loss) == 0:
        raise InputError("the loss history is empty: nothing to plot")
    if not np.isfinite(loss).all():
        bad = int(np.argmax(~np.isfinite(loss))) + 1
        raise InputError(f"the loss of epoch {bad} is not finite ({loss[bad - 1]}); training diverged")
    from matplotlib.ticker import MaxNLocator

    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, marker="o", markersize=4 if len(loss) <= 60 else 0, color="#2563eb", linewidth=1.6)
    if (loss > 0).all() and loss.max() / loss.min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or "training loss")
    ax.grid(True, alpha=0.3)
    last = f"last {loss[-1]:.4g}" + (f", first {loss[0]:.4g}" if len(loss) > 1 else "")
    ax.annotate(last, xy=(0.99, 0.97), xycoords="axes fraction", ha="right", va="top", fontsize=8, color="#555555")
    fig.tight_layout()
    _save(fig, out)
    return out
