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
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._arrays import as_vectors
from ._files import text_lines
from ._io import atomic_write_bytes
from ._knn import unit_rows
from ._validation import check_choice, check_int, check_seed
from .embeddings import check_embeddings
from .errors import InputError, ParseError

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne")
FORMATS = (".png", ".svg", ".pdf")
MAX_COLOURS = 20
EXACT_TSNE_LIMIT = 500
UNLABELLED = "(no label)"
OTHER = "(other labels)"


def read_labels(path, *, strict: bool = False) -> dict[str, str]:
    """``KEY LABEL`` per line (tab, comma or whitespace between them); '#' starts a comment line.

    Raises ParseError naming the line for a line with a key but no label, or for bytes that are not
    UTF-8 text. A key listed twice keeps its last label; ``strict=True`` (the CLI's ``--labels``)
    refuses a key given two different labels instead, naming both lines: what a corpus or an edge
    list passed by mistake looks like.
    """
    labels: dict[str, str] = {}
    first: dict[str, int] = {}
    p = Path(path)
    for n, raw in text_lines(p, "a labels file of lines 'KEY LABEL'", "give a text file of 'KEY LABEL' lines"):
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
        key, label = parts[0].strip(), parts[1].strip()
        if strict and key in labels and labels[key] != label:
            raise ParseError(p, n, f"key {key!r} is labelled {label[:40]!r} here and {labels[key][:40]!r} on line "
                                   f"{first[key]}; give each key one label ('KEY LABEL' per line)")
        if strict:
            first.setdefault(key, n)
        labels[key] = label
    if not labels:
        raise InputError(f"{p}: no labels found; write one 'KEY LABEL' per line")
    return labels


def project_2d(vectors, method: str = "pca", seed: int = 0, normalize: bool = False) -> np.ndarray:
    """(n, 2) coordinates of the rows of ``vectors`` by PCA or t-SNE."""
    return _project(vectors, method, seed, normalize)[0]


def _project(vectors, method: str, seed: int, normalize: bool) -> tuple[np.ndarray, tuple | None]:
    """(n, 2) coordinates and, for PCA, the share of the variance each axis explains (else None)."""
    method = check_choice("plot", "method", method, METHODS)
    x = as_vectors(vectors).astype(np.float64)
    if len(x) < 2:
        raise InputError(f"a map needs at least 2 vectors; got {len(x)}")
    if normalize:
        x = unit_rows(x)
    if x.shape[1] == 1:
        return np.hstack([x, np.zeros_like(x)]), ((1.0, 0.0) if method == "pca" else None)
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        # fix the sign of each axis so the same vectors always give the same picture
        signs = np.sign(xy[np.abs(xy).argmax(axis=0), [0, 1]])
        total = float((sv ** 2).sum())
        share = tuple(float(v) / total if total > 0 else 0.0 for v in (sv[:2] ** 2))
        return xy * np.where(signs == 0, 1, signs), share
    from sklearn.manifold import TSNE

    if len(x) < 5:
        raise InputError(f"t-SNE needs at least 5 vectors; got {len(x)} (use method='pca')")
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    # exact gradients for small maps: Barnes-Hut's thread pool costs more than it saves there
    method_ = "exact" if len(x) <= EXACT_TSNE_LIMIT else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                method=method_).fit_transform(x), None


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


def _label_rows(keys: list[str], label_keys, top: int) -> tuple[list[int], list[int]]:
    """Rows whose key is written on the map: (asked for by the user, picked: the first ``top`` in index order)."""
    if label_keys is None:
        return [], list(range(min(top, len(keys))))
    if isinstance(label_keys, str):
        label_keys = [label_keys]
    row = {k: i for i, k in enumerate(keys)}
    asked = list(dict.fromkeys(str(k) for k in label_keys))
    missing = [k for k in asked if k not in row]
    if missing:
        from .embeddings import close_matches

        close = close_matches(missing[0], keys, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"label_keys: {len(missing)} of {len(asked)} keys are not in the index, e.g. "
                         f"{missing[0]!r}{hint}; give keys of the index")
    return [row[k] for k in asked], []


def _place_labels(ax, fig, xy, rows, texts, forced: int, fontsize: float) -> list[int]:
    """Write ``texts`` beside the points ``xy[rows]``; the first ``forced`` always, the others
    only where they overlap no label already written (a readable subset). Returns the rows written."""
    from matplotlib import patheffects

    fig.canvas.draw()  # data -> pixel transform of the final axes limits
    px = ax.transData.transform(xy[rows]) if rows else np.zeros((0, 2))
    scale = fig.dpi / 72.0
    h = fontsize * 1.25 * scale
    boxes, written = [], []
    for j, (r, text) in enumerate(zip(rows, texts)):
        x0, y0 = px[j, 0] + 3 * scale, px[j, 1] + 2 * scale
        box = (x0, y0, x0 + 0.62 * fontsize * scale * len(text), y0 + h)
        if j >= forced and any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            continue
        boxes.append(box)
        written.append(r)
        ax.annotate(text, xy[r], xytext=(3, 2), textcoords="offset points", fontsize=fontsize, color="#111111",
                    zorder=5, path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
                    gid=f"key-label-{len(written)}")
    return written


def plot_map(emb, out, labels=None, method: str = "pca", *, title: str | None = None, max_points: int = 5000,
             seed: int = 0, normalize: bool = True, annotate: int = 40, label_keys=None, label_top: int = 30) -> dict:
    """Draw a 2-D map of ``emb`` (Embeddings) into ``out`` (.png, .svg or .pdf), coloured by label.

    Parameters
    ----------
    labels : dict key -> label, or None
        Keys missing from it are drawn grey as "(no label)"; beyond 20 labels the rarest pool.
    method : {"pca", "tsne"}, default "pca"
        PCA axes say the share of the variance each one explains.
    max_points : int, default 5000
        A seeded random sample of this many items is drawn when the index holds more (the
        points of ``label_keys`` are always kept).
    normalize : bool, default True
        Project unit-length vectors (right for cosine indexes).
    annotate : int, default 40
        Write each key beside its point when at most this many points are drawn.
    label_keys : list of str, or None
        Keys to write on the map and draw larger, with a dark edge, on top of the others; never
        sampled away. Raises InputError naming a key that is not in ``emb``.
    label_top : int, default 30
        Without ``label_keys``, on maps of more than ``annotate`` points: write the first
        ``label_top`` keys of ``emb`` in its order, skipping those whose text would overlap
        another (Word2Vec orders its vocabulary by frequency, so these are the most frequent
        words). 0 writes none.

    Returns a dict with ``keys``, ``xy`` (n, 2), ``labels`` (per point), ``annotated`` (keys
    written on the map), ``explained_variance`` (PCA: the share of each axis, else None) and ``path``.
    Raises InputError for a bad method, file type, key, or too few vectors.
    """
    check_embeddings(emb)
    if labels is not None and not isinstance(labels, Mapping):
        raise InputError(f"labels must be a dict {{key: label}} (e.g. read_labels(path)); got {type(labels).__name__}")
    out = _check_out(out)
    method = check_choice("plot", "method", method, METHODS)
    max_points = check_int("plot", "max_points", max_points, 2)
    label_top = check_int("plot", "label_top", label_top, 0)
    seed = check_seed("plot", seed)
    all_keys = list(emb.keys)
    asked, _ = _label_rows(all_keys, label_keys, label_top)
    keys = all_keys
    vectors = emb.vectors
    if len(keys) > max_points:
        keep = np.asarray(sorted(set(asked)), dtype=np.int64)
        if len(keep) > max_points:
            raise InputError(f"label_keys holds {len(keep)} keys but max_points is {max_points}; raise max_points")
        rest = np.setdiff1d(np.arange(len(keys)), keep)
        extra = np.random.default_rng(seed).choice(rest, size=max_points - len(keep), replace=False)
        pick = np.sort(np.concatenate([keep, extra]))
        log.info("drawing a random sample of %d of %d items", max_points, len(keys))
        keys, vectors = [keys[i] for i in pick], vectors[pick]
    xy, share = _project(vectors, method, seed, normalize)
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
    # which keys to write: all on small maps, else the user's list, else the first label_top (readable subset)
    row_of = {k: i for i, k in enumerate(keys)}
    if label_keys is not None:
        rows, forced = [row_of[all_keys[i]] for i in asked], len(asked)
    elif len(keys) <= annotate:
        rows, forced = list(range(len(keys))), len(keys)
    else:
        first = [k for k in all_keys[:label_top] if k in row_of]
        rows, forced = [row_of[k] for k in first], 0
    label_name = {"pca": "PCA", "tsne": "t-SNE"}[method]
    if share is not None:
        ax.set_xlabel(f"{label_name} 1 ({100 * share[0]:.1f}% of variance)")
        ax.set_ylabel(f"{label_name} 2 ({100 * share[1]:.1f}% of variance)")
    else:
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
    written = _place_labels(ax, fig, xy, rows, [keys[r] for r in rows], forced, 7.0 if forced == len(keys) else 8.0)
    if written and (label_keys is not None or len(keys) > annotate):  # the written points stand out
        limits = ax.get_xlim(), ax.get_ylim()
        sel = np.asarray(written)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=max(2.5 * size, 36.0), color=[colours[names[r]] for r in written],
                   edgecolors="#111111", linewidths=0.9, zorder=4)
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
    _save(fig, out)
    return {"keys": keys, "xy": xy, "labels": names, "annotated": [keys[r] for r in written],
            "explained_variance": share, "path": out}


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
    from matplotlib.ticker import FixedLocator, MaxNLocator

    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    epochs = np.arange(1, len(loss) + 1)
    one = len(loss) == 1
    ax.plot(epochs, loss, marker="o", markersize=9 if one else (4 if len(loss) <= 60 else 0), color="#2563eb",
            linewidth=1.6)
    if one:  # one point says little on its own: write its value beside it and why there is no curve
        ax.annotate(f"epoch 1: loss {loss[0]:.4g}", (1, loss[0]), xytext=(10, 0), textcoords="offset points",
                    va="center", fontsize=10, color="#1e3a8a")
        ax.set_xlim(0.5, 1.8)
        ax.text(0.5, 0.06, "one epoch trained: train more epochs to see a curve", transform=ax.transAxes,
                ha="center", fontsize=9, color="#555555")
    if (loss > 0).all() and loss.max() / loss.min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch)")
    ax.xaxis.set_major_locator(FixedLocator([1]) if one else MaxNLocator(integer=True))
    ax.set_title(title or "training loss")
    ax.grid(True, alpha=0.3)
    if not one:
        last = f"last {loss[-1]:.4g}, first {loss[0]:.4g}"
        ax.annotate(last, xy=(0.99, 0.97), xycoords="axes fraction", ha="right", va="top", fontsize=8, color="#555555")
    fig.tight_layout()
    _save(fig, out)
    return out
