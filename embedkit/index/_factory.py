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

    check_factory(factory, metric)
    try:
        base = faiss.index_factory(dim, factory, faiss_metric(metric))
    except (RuntimeError, MemoryError) as exc:  # MemoryError: FAISS's std::bad_alloc ("IVF1000000000,Flat")
        raise InputError(bad_kind_message(factory, dim, str(exc) or type(exc).__name__)) from None
    hnsw = _find_graph(base)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = int(knobs["ef_construction"])
    for part in _parts(base):
        if getattr(part, "do_polysemous_training", False):
            # polysemous codes are never used by our search; training them costs 15x the PQ itself
            # (a plain "PQ8" trained 300 vectors for over 30 s)
            part.do_polysemous_training = False
    ivf = find_ivf(base)
    if ivf is not None:
        # we choose nlist for the data at hand; say so through logging, not FAISS's stderr warning
        ivf = faiss.downcast_index(ivf)
        ivf.cp.min_points_per_centroid = 1
        pq = getattr(ivf, "pq", None)
        if pq is not None:
            pq.cp.min_points_per_centroid = 1
    if takes_ids(base):
        return base, True  # IVF, or a user factory string that brings its own id map
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


_LOCATION = re.compile(r"^.* at \S+?\.(?:cpp|cc|cu|cuh|h|hpp):\d+: ")  # greedy: up to the last one
_CHECK = re.compile(r"^Error: '(.*?)' failed(?:: (.*))?$")


def faiss_reason(error) -> str:
    """FAISS's reason in one clean line: without "Error in <C++ function> at <file>:<line>:" and
    without the "Error: '<condition>' failed:" prefix when a message follows it."""
    text = " ".join(str(error).split())
    text = _LOCATION.sub("", text)
    m = _CHECK.match(text)
    if m:
        text = m.group(2) or f"its check {m.group(1)} failed"
    if text in ("std::bad_alloc", "MemoryError", ""):
        text = "out of memory" if text else "unknown error"
    return text.replace("faiss::", "")[:200]


def faiss_error(kind: str, doing: str, exc, fix: str = "use another kind, e.g. 'hnsw' or 'flat'") -> InputError:
    """The one-line InputError for a FAISS RuntimeError that escaped an add / search / train."""
    return InputError(f"kind={kind!r}: FAISS could not {doing} ({faiss_reason(exc)}); {fix}")


def bad_kind_message(kind: str, dim: int | None, faiss_error: str) -> str:
    """One line for a kind that is neither ours nor a factory string FAISS can build: the kinds,
    FAISS's reason without its C++ location, and the closest kind ("hnws" -> did you mean 'hnsw'?)."""
    from difflib import get_close_matches

    reason = faiss_reason(faiss_error)
    close = get_close_matches(kind.lower(), KINDS, n=1) if kind.isalpha() else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    what = "a FAISS factory string" + (f" that builds for dim={dim}" if dim is not None else "")
    return f"kind={kind!r} is not one of {', '.join(KINDS)}, nor {what} (FAISS: {reason}){hint}"


# Numbers FAISS takes without complaint and then crashes the process on (segfault, abort,
# division by zero) or loops forever; each minimum measured in a subprocess (see docs/index.md).
MIN_HNSW_M = 2     # HNSW0 aborts, HNSW1 segfaults at the first add; HNSW2 works
MIN_NSG_R = 16     # NSG4..NSG12 never finish building on some random data (NSG12: 3000 x 256 cosine); NSG16 did on all
MIN_NSG_R_IP = 32  # with raw inner products NSG16 hangs too (3000 x 128); NSG32 did not


def _part_start(kind: str, pos: int) -> int:
    return max(kind.rfind(c, 0, pos) for c in ",()") + 1


def _part(kind: str, pos: int) -> str:
    """The component of a factory string around position ``pos`` ("IVF8_HNSW0" in "IVF8_HNSW0,Flat")."""
    ends = [e for e in (kind.find(c, pos) for c in ",()") if e >= 0]
    return kind[_part_start(kind, pos):min(ends, default=len(kind))]


def check_factory(kind: str, metric: str | None = None) -> None:
    """Refuse the numbers in a FAISS factory string that crash or hang FAISS, before FAISS sees
    them: HNSW M < 2, NSG R < 16 (< 32 with metric='ip'), and any 0 (IVF0, PQ4x0, RR0, PCA0,
    OPQ4_0, IMI2x0...; "SQ0", FAISS's 0-bit scalar quantizer, is a name, not a count).
    ``metric`` None (the CLI's --kind, before the metric is known) skips the metric rule."""
    if kind.lower() in KINDS:
        return
    for m in re.finditer(r"HNSW(\d+)", kind):
        if int(m.group(1)) < MIN_HNSW_M:
            raise InputError(f"kind={kind!r}: HNSW needs M >= {MIN_HNSW_M} neighbours per node (got {int(m.group(1))} "
                             f"in {_part(kind, m.start())!r}); e.g. 'HNSW32'")
    for m in re.finditer(r"NSG(\d+)", kind):
        low, why = (MIN_NSG_R_IP, " with metric='ip'") if metric == "ip" else (MIN_NSG_R, "")
        if int(m.group(1)) < low:
            raise InputError(f"kind={kind!r}: NSG needs R >= {low} neighbours per node{why} (got {int(m.group(1))} in "
                             f"{m.group(0)!r}): "
                             "FAISS's graph build can loop forever below that; e.g. 'NSG32'")
    for m in re.finditer(r"\d+", kind):
        if int(m.group()) == 0 and not kind[:m.start()].endswith("SQ"):
            part, at = _part(kind, m.start()), m.start() - _part_start(kind, m.start())
            fixed = part[:at] + "8" + part[at + len(m.group()):]
            raise InputError(f"kind={kind!r}: every count and size in a FAISS factory string (lists, neighbours, "
                             f"sub-quantizers, bits, dimensions) must be >= 1 (got 0 in {part!r}); e.g. {fixed!r}")


def check_kind(kind: str) -> str:
    """``kind`` if it is one of ours or a factory string FAISS can parse, else InputError (the
    message of :func:`bad_kind_message`, or :func:`check_factory`'s for numbers that crash FAISS).
    For checking a command-line ``--kind`` before any work: whether a factory string builds for
    the data's dim (and the metric rule of :func:`check_factory`) is checked by :class:`VectorIndex`."""
    if not isinstance(kind, str) or not kind:
        raise InputError(f"kind must be one of {', '.join(KINDS)} or a FAISS factory string; got {kind!r}")
    if kind.lower() in KINDS:
        return kind.lower()  # (no FAISS import for the usual kinds: the CLI checks its default too)
    check_factory(kind)
    import faiss

    try:
        faiss.index_factory(_PROBE_DIM, kind)
    except (RuntimeError, MemoryError) as exc:
        if "could not parse" in str(exc):
            raise InputError(bad_kind_message(kind, None, str(exc))) from None
    return kind


_PROBE_DIM = 720  # divisible by most sub-quantizer counts and PCA sizes, so only parse errors show


def takes_ids(index) -> bool:
    """Whether this FAISS index is fed with add_with_ids (IVF, id maps, either behind a transform)
    or numbers items itself (HNSW, NSG, PQ, and IndexRefine even around an IVF: it has no add_with_ids)."""
    import faiss

    idx = faiss.downcast_index(index)
    while isinstance(idx, faiss.IndexPreTransform):
        idx = faiss.downcast_index(idx.index)
    return isinstance(idx, (faiss.IndexIVF, faiss.IndexIDMap, faiss.IndexIDMap2))


def _parts(index, depth: int = 0):
    """``index`` and the indexes inside it (wrapped index, refine, storage, coarse quantizer), downcast."""
    import faiss

    index = faiss.downcast_index(index)
    yield index
    if depth < 6:
        for attr in ("index", "base_index", "refine_index", "storage", "quantizer"):
            sub = getattr(index, attr, None)
            if isinstance(sub, faiss.Index):
                yield from _parts(sub, depth + 1)


def emptied_copy(index):
    """A copy of a trained FAISS index without its items (a rebuild that must leave ``index``
    as it is until it succeeds), or None where FAISS cannot copy that type."""
    import faiss

    try:
        copy = faiss.clone_index(index)
        copy.reset()
        return copy
    except RuntimeError:
        return None


# the kinds each search knob of set_params tunes (FAISS factory strings: those holding IVF / HNSW)
KNOB_KINDS = {"nprobe": "ivf and ivfpq indexes and IVF factory strings",
              "ef_search": "hnsw indexes, HNSW factory strings and kind 'auto' before its first add",
              "refine": "ivfpq indexes",
              "nlist": "kinds 'ivf' and 'ivfpq' (a factory string sets its own IVF<n>)",
              "pq_m": "kind 'ivfpq' (a factory string sets its own PQ<m>)"}


def knob_applies(knob: str, kind: str, index) -> bool:
    """Whether search knob ``knob`` changes the searches of an index of ``kind``: ``index`` is its FAISS index
    (for a factory string before the first add, the untrained one :func:`build` makes; None for our kinds then)."""
    if knob in ("refine", "pq_m"):
        return kind == "ivfpq"
    if knob == "nlist":  # a build option of our IVF kinds
        return kind in ("ivf", "ivfpq")
    if index is not None:
        return find_ivf(index) is not None if knob == "nprobe" else is_hnsw(index)
    return kind in ("ivf", "ivfpq") if knob == "nprobe" else kind in ("hnsw", "auto")


def apply_search_knobs(index, knobs: dict) -> None:
    hnsw = _find_graph(index)
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
    return _find_graph(index) is not None


def builds_once(index) -> bool:
    """Whether ``index`` is a graph FAISS builds in one go (NSG: a second add is refused, so adding
    later means rebuilding the whole index)."""
    return _find_graph(index, "nsg") is not None


def _find_graph(index, attr: str = "hnsw"):
    """The index inside ``index`` (through id maps, transforms, refinement) that holds the graph ``attr``."""
    import faiss

    idx = index
    for _ in range(4):
        idx = faiss.downcast_index(idx)
        if hasattr(idx, attr):
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
