"""Turning a metric and a kind into a FAISS index, with the knobs that tune it.

Guidelines followed (FAISS wiki, "Guidelines to choose an index"): exact search below
50k vectors; HNSW above; IVF with about 4*sqrt(n) lists trained on at least 39 points per list.
"""

from __future__ import annotations

import math
import re

from ..errors import InputError

KINDS = ("flat", "hnsw", "ivf", "ivfpq", "auto")
AUTO_FLAT_LIMIT = 50_000
MIN_POINTS_PER_LIST = 39
PQ_TRAIN_MIN = 256  # 2**8 centroids per sub-quantizer

DEFAULT_KNOBS = {"hnsw_m": 32, "ef_construction": 80, "ef_search": 64, "nlist": None, "nprobe": None,
                 "pq_m": None, "refine": 4, "cosine_one_copy": None}


def faiss_metric(metric: str):
    import faiss

    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def resolve_kind(kind: str, n: int) -> str:
    if kind == "auto":
        return "flat" if n < AUTO_FLAT_LIMIT else "hnsw"
    return kind


def default_nlist(n: int) -> int:
    """About 4*sqrt(n) lists, but never fewer than 39 training points per list."""
    return int(max(1, min(round(4 * math.sqrt(max(n, 1))), n // MIN_POINTS_PER_LIST)))


def default_nprobe(nlist: int) -> int:
    return int(min(nlist, max(8, nlist // 8)))


def default_pq_m(dim: int) -> int:
    """Largest divisor of dim giving sub-vectors of at least 2 dims (and at most 64 codes)."""
    for m in range(min(64, max(1, dim // 2)), 0, -1):
        if dim % m == 0:
            return m
    return 1


def factory_string(kind: str, dim: int, knobs: dict, n_train: int) -> tuple[str, dict]:
    """The FAISS factory string for one of our kinds, and the knobs it fixed from the data size.

    Returns ``(factory, filled)``: ``filled`` holds nlist/nprobe/pq_m chosen here (IVF kinds)
    for the caller to store; ``knobs`` itself is not changed.
    """
    if kind == "flat":
        return "Flat", {}
    if kind == "hnsw":
        return f"HNSW{knobs['hnsw_m']}", {}
    if kind in ("ivf", "ivfpq"):
        nlist = int(knobs.get("nlist") or default_nlist(n_train))
        filled = {"nlist": nlist}
        if knobs.get("nprobe") is None:
            filled["nprobe"] = default_nprobe(nlist)
        if kind == "ivf":
            return f"IVF{nlist},Flat", filled
        m = knobs.get("pq_m") or default_pq_m(dim)
        if dim % m:
            raise InputError(f"pq_m={m} must divide dim={dim}; choose a divisor of {dim}")
        filled["pq_m"] = int(m)
        return f"IVF{nlist},PQ{m}x8", filled
    return kind, {}  # a FAISS factory string


def check_training_size(kind: str, n: int, knobs: dict) -> None:
    if kind in ("ivf", "ivfpq"):
        nlist = knobs.get("nlist")
        if nlist and n < nlist:
            raise InputError(
                f"kind={kind!r} with nlist={nlist} needs at least {nlist} vectors in the first add() to train "
                f"({nlist * MIN_POINTS_PER_LIST} recommended); got {n}. Add more at once, lower nlist, or use kind='flat'"
            )
    if kind == "ivfpq" and n < PQ_TRAIN_MIN:
        raise InputError(
            f"kind='ivfpq' needs at least {PQ_TRAIN_MIN} vectors in the first add() to train its product quantizer; "
            f"got {n}. Add more at once, or use kind='flat' or 'hnsw' for small collections"
        )


def build(kind: str, factory: str, dim: int, metric: str, knobs: dict):
    """Create the FAISS index; returns (index, ids_native) where ids_native means add_with_ids works."""
    import faiss

    try:
        base = faiss.index_factory(dim, factory, faiss_metric(metric))
    except RuntimeError as exc:
        raise InputError(bad_kind_message(factory, dim, str(exc))) from None
    hnsw = _find_hnsw(base)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = int(knobs["ef_construction"])
    ivf = find_ivf(base)
    if ivf is not None:
        # we choose nlist for the data at hand; say so through logging, not FAISS's stderr warning
        ivf = faiss.downcast_index(ivf)
        ivf.cp.min_points_per_centroid = 1
        if hasattr(ivf, "do_polysemous_training"):
            # polysemous codes are never used by our search; training them costs 15x the PQ itself
            ivf.do_polysemous_training = False
        pq = getattr(ivf, "pq", None)
        if pq is not None:
            pq.cp.min_points_per_centroid = 1
        return base, True
    if isinstance(faiss.downcast_index(base), (faiss.IndexIDMap, faiss.IndexIDMap2)):
        return base, True  # a user factory string that brings its own id map
    if isinstance(faiss.downcast_index(base), faiss.IndexFlat):
        # flat keeps its id map: removal stays native, and batch search stays on FAISS's BLAS path
        # (tombstones would need an IDSelector, which costs +63% per batch query at 100k).
        # IndexIDMap, not IDMap2: IDMap2's reverse hash map (~50 bytes per item) serves only
        # reconstruct(), and we read vectors straight from the flat storage
        return faiss.IndexIDMap(base), True
    # HNSW and co.: FAISS numbers items 0, 1, 2... in add order, which is exactly our id sequence
    # (ids are never reused; removal = tombstones, compaction renumbers 0..n-1), so no
    # IndexIDMap2: its search runs an OpenMP loop over the k labels of every query (milliseconds
    # per single query when the cores are busy) and its rev_map costs memory per item.
    return base, False


def bad_kind_message(kind: str, dim: int | None, faiss_error: str) -> str:
    """One line for a kind that is neither ours nor a factory string FAISS can build: the kinds,
    FAISS's reason without its C++ location, and the closest kind ("hnws" -> did you mean 'hnsw'?)."""
    from difflib import get_close_matches

    lines = faiss_error.strip().splitlines()
    reason = lines[-1].strip() if lines else "invalid"
    m = re.match(r"^Error in .*? at \S+:\d+: (.*)$", reason)
    if m:
        reason = m.group(1).strip()
    reason = re.sub(r"^Error: '.*?' failed: ", "", reason)
    reason = " ".join(reason.split())[:200] or "invalid"
    close = get_close_matches(kind.lower(), KINDS, n=1) if kind.isalpha() else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    what = "a FAISS factory string" + (f" that builds for dim={dim}" if dim is not None else "")
    return f"kind={kind!r} is not one of {', '.join(KINDS)}, nor {what} (FAISS: {reason}){hint}"


def check_kind(kind: str) -> str:
    """``kind`` if it is one of ours or a factory string FAISS can parse, else InputError (the
    message of :func:`bad_kind_message`). For checking a command-line ``--kind`` before any work:
    whether a factory string builds for the data's dim is known only at :class:`VectorIndex`."""
    if not isinstance(kind, str) or not kind:
        raise InputError(f"kind must be one of {', '.join(KINDS)} or a FAISS factory string; got {kind!r}")
    if kind.lower() in KINDS:
        return kind.lower()  # (no FAISS import for the usual kinds: the CLI checks its default too)
    import faiss

    try:
        faiss.index_factory(_PROBE_DIM, kind)
    except RuntimeError as exc:
        if "could not parse" in str(exc):
            raise InputError(bad_kind_message(kind, None, str(exc))) from None
    return kind


_PROBE_DIM = 720  # divisible by most sub-quantizer counts and PCA sizes, so only parse errors show


def takes_ids(index) -> bool:
    """Whether this FAISS index is fed with add_with_ids (IVF, id maps) or numbers items itself."""
    import faiss

    if find_ivf(index) is not None:
        return True
    return isinstance(faiss.downcast_index(index), (faiss.IndexIDMap, faiss.IndexIDMap2))


def apply_search_knobs(index, knobs: dict) -> None:
    hnsw = _find_hnsw(index)
    if hnsw is not None and knobs.get("ef_search"):
        hnsw.hnsw.efSearch = int(knobs["ef_search"])
    ivf = find_ivf(index)
    if ivf is not None and knobs.get("nprobe"):
        ivf.nprobe = int(min(knobs["nprobe"], ivf.nlist))


def flat_storage(index):
    """The IndexFlat holding every vector exactly as added, when ``index`` is our flat kind
    (IndexIDMap2 over IndexFlat) or an IndexHNSWFlat; else None (IVF, PQ, transforms...)."""
    import faiss

    idx = faiss.downcast_index(index)
    if isinstance(idx, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        inner = faiss.downcast_index(idx.index)
        return inner if type(inner) in (faiss.IndexFlat, faiss.IndexFlatIP, faiss.IndexFlatL2) else None
    if type(idx) is faiss.IndexHNSWFlat:
        inner = faiss.downcast_index(idx.storage)
        return inner if type(inner) in (faiss.IndexFlat, faiss.IndexFlatIP, faiss.IndexFlatL2) else None
    return None


def is_hnsw(index) -> bool:
    return _find_hnsw(index) is not None


def _find_hnsw(index):
    import faiss

    idx = index
    for _ in range(4):
        idx = faiss.downcast_index(idx)
        if hasattr(idx, "hnsw"):
            return idx
        if isinstance(idx, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexPreTransform, faiss.IndexRefine)):
            idx = idx.index if not isinstance(idx, faiss.IndexRefine) else idx.base_index
            continue
        return None
    return None


def find_ivf(index):
    """The IVF index inside ``index`` (through wrappers), or None."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, TypeError):
        return None
