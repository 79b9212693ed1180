"""FAISS factory strings as VectorIndex kinds: numbers that crash or hang FAISS are refused in one
line before FAISS sees them; every string FAISS can build adds, searches, removes, upserts and
round-trips through save/load; FAISS's own refusals are one line without its C++ names.

Each string in CRASHERS killed the Python process (segfault, abort, division by zero) or hung at
the first add (NSG below R=16: on some random data only, see docs/index.md) before the check in
``embedkit/index/_factory.py::check_factory``; they are only ever constructed here (refused before
any FAISS call), never added to.
"""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
from embedkit.index import VectorIndex
from embedkit.index._factory import check_kind, faiss_reason

DIM, N = 8, 300

CRASHERS = {  # kind: the component the message must name
    "HNSW0": "HNSW0", "HNSW1": "HNSW1", "HNSW1,Flat": "HNSW1", "HNSW0,Flat": "HNSW0",
    "IVF8_HNSW0,Flat": "IVF8_HNSW0", "NSG0": "got 0", "NSG2": "got 2", "NSG3": "got 3",
    "NSG4": "got 4", "NSG6": "got 6", "NSG8": "got 8", "NSG12": "got 12",
    "PQ4x0": "PQ4x0", "IVF8,PQ4x0": "PQ4x0", "HNSW32,PQ4x0": "PQ4x0", "IVF8(IVF2,PQ4x0),Flat": "PQ4x0",
    "RR0,Flat": "RR0", "PCAR0,Flat": "PCAR0", "OPQ4_0,PQ4": "OPQ4_0", "IVF0,Flat": "IVF0", "PCA0,Flat": "PCA0",
    "OPQ0,PQ4": "OPQ0", "ITQ0,LSH": "ITQ0", "IMI2x0,Flat": "IMI2x0",
}

WORKING = [
    "IVF1,Flat", "NSG32", "NSG16,Flat", "IDMap,NSG32", "PCA4,NSG32", "PQ4x3", "PQ4x4", "PQ4x4fs", "PQ8x3", "PQ2x1", "PQ8",
    "IVF8,PQ4x4fs", "IVF8,PQ4x2", "IVF8,PQ8x3", "IDMap,Flat", "IDMap2,HNSW8", "HNSW2", "PCA4,IVF8,Flat",
    "PCA4,HNSW16", "SQ4", "SQfp16", "SQ0", "IVF8,SQ0", "LSHrt", "IVF8,RaBitQ", "IMI2x2,Flat",
    "IVF8,Flat,RFlat", "IVF8,SQ8,Refine(Flat)", "HNSW8,Refine(Flat)", "HNSW8,Refine(PQ4)",
]


def data(n=N, seed=0):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def one_line(text: str, kind: str) -> None:
    assert "\n" not in text and repr(kind) in text, text
    assert "faiss::" not in text and ".cpp" not in text and ".h:" not in text, text


@pytest.mark.parametrize("kind", sorted(CRASHERS))
def test_numbers_that_crash_faiss_are_refused_at_construction(kind):
    with pytest.raises(ek.InputError) as err:
        VectorIndex(DIM, metric="l2", kind=kind)
    text = str(err.value)
    one_line(text, kind)
    assert CRASHERS[kind] in text and ">=" in text, text
    with pytest.raises(ek.InputError) as cli:  # the CLI's --kind check refuses it the same way
        check_kind(kind)
    assert str(cli.value) == text


def test_the_rules_leave_working_strings_alone():
    for kind in ("SQ0", "IVF8,SQ0", "HNSW2", "NSG16", "IVF10,Flat", "PQ4x1", "IVF1024_HNSW32,Flat"):
        assert check_kind(kind) == kind
    VectorIndex(DIM, metric="l2", kind="NSG16")
    with pytest.raises(ek.InputError, match=r"R >= 32 neighbours per node with metric='ip' \(got 16 in 'NSG16'\)"):
        VectorIndex(DIM, metric="ip", kind="NSG16")  # raw inner products hang NSG16 (3000 x 128)
    VectorIndex(DIM, metric="ip", kind="NSG32")


@pytest.mark.parametrize("kind", WORKING)
def test_factory_string_round_trip(kind, tmp_path):
    x = data()
    keys = [str(i) for i in range(N)]
    idx = VectorIndex(DIM, metric="l2", kind=kind)
    idx.add(keys, x)
    assert [len(r) for r in idx.search(x[:4], k=3).keys] == [3] * 4
    assert idx.remove(["0", "5"]) == 2
    gone = {"0", "5"}
    for res in (idx.search(x[:6], k=3), idx.search_keys(["1", "2"], k=3)):
        assert all(len(r) == 3 and not gone & set(r) for r in res.keys), res.keys
    every = idx.search(x[0], k=N)  # k above the live count: every live key once, never a removed one
    assert sorted(every.keys[0]) == sorted(set(keys) - gone)
    idx.upsert(["1", "new"], x[[7, 8]] + 0.5)
    assert len(idx) == N - 1 and "new" in idx.keys and "0" not in idx.keys
    assert np.array_equal(idx.get_vectors(["1", "new"]), x[[7, 8]] + 0.5)
    idx.save(tmp_path / "ix")
    back = VectorIndex.load(tmp_path / "ix")
    assert back.kind == kind and len(back) == N - 1
    res = back.search(x[:6], k=3)
    assert all(len(r) == 3 and not gone & set(r) for r in res.keys), res.keys
    back.add(["extra"], x[:1] * 3)  # NSG, built once by FAISS, is rebuilt with the new item
    back.remove(["2"])
    assert "extra" in back.search(x[0] * 3, k=N).keys[0] and "2" not in back.search(x[2], k=5).keys[0]
    back.rebuild()  # tombstones dropped for good; a trained transform or quantizer is kept
    assert back._storage.faiss.ntotal == len(back) == N - 1
    assert sorted(back.search(x[3], k=N).keys[0]) == sorted(back.keys)


@pytest.mark.parametrize("kind", ["PQ8x3", "NSG32", "IVF8,Flat,RFlat"])
def test_tombstones_on_indexes_that_take_no_search_parameters(kind):
    """PQ, NSG and IndexRefine refuse the tombstone selector: searched without it, k + tombstones
    deep, removed items dropped and short rows answered exactly."""
    x = data(seed=1)
    keys = [str(i) for i in range(N)]
    idx = VectorIndex(DIM, metric="l2", kind=kind, rebuild_fraction=0.9)
    idx.add(keys, x, payload=[{"even": i % 2 == 0} for i in range(N)])
    removed = keys[:200]
    idx.remove(removed)
    assert len(idx._storage.tombstones) == 200  # no rebuild: the search must skip them itself
    for _ in range(2):  # the first search finds out that FAISS refuses parameters, the second knows
        res = idx.search(x[:20], k=10)
        assert all(len(r) == 10 and not set(removed) & set(r) for r in res.keys)
    assert idx._storage.params_refused
    res = idx.search(x[:5], k=100)  # all 100 live items, though FAISS's first 100 + 200 are mostly removed
    assert all(sorted(r) == sorted(keys[200:]) for r in res.keys)
    res = idx.search(x[:5], k=10, filter={"even": True})
    assert all(len(r) == 10 and all(int(k) % 2 == 0 and int(k) >= 200 for k in r) for r in res.keys)


def test_faiss_refusals_are_one_line_and_lose_nothing():
    x = data()
    keys = [str(i) for i in range(N)]
    idx = VectorIndex(DIM, metric="l2", kind="PQ4x1")  # builds, but FAISS cannot search 1-bit codes at dim 8
    with pytest.raises(ek.InputError) as err:
        idx.add(keys, x)
    text = str(err.value)
    one_line(text, "PQ4x1")
    assert "ksub % 8 == 0" in text and "nothing was added" in text
    assert len(idx) == 0 and idx._storage.faiss is None
    small = VectorIndex(DIM, kind="IVF64,Flat")
    with pytest.raises(ek.InputError) as err:
        small.add(keys[:40], x[:40])
    one_line(str(err.value), "IVF64,Flat")
    assert "Number of training points (40) should be at least as large as number of clusters (64)" in str(err.value)
    small.add(keys, x)  # nothing of the refused add remains: the same keys go in
    assert len(small) == N


def test_faiss_reason_drops_cpp_names():
    import faiss

    with pytest.raises(RuntimeError) as err:
        faiss.index_factory(DIM, "PQ7")
    raw = str(err.value)
    assert "faiss::" in raw and ".cpp" in raw  # what FAISS says...
    assert faiss_reason(raw) == ("The dimension of the vector (d) should be a multiple of the number of "
                                 "subquantizers (M)")  # ...and what we show
    assert faiss_reason("Error in void faiss::f(size_t) [with T = faiss::X] at /p/faiss/a.h:149: "
                        "Error: 'ksub % 8 == 0' failed") == "its check ksub % 8 == 0 failed"
    assert faiss_reason("std::bad_alloc") == "out of memory"
    with pytest.raises(ek.InputError) as bad:
        VectorIndex(DIM, kind="IVF8,PQ3")
    one_line(str(bad.value), "IVF8,PQ3")
    assert "multiple of the number of subquantizers" in str(bad.value)


@pytest.mark.parametrize("kind", ["NSG32", "hnsw", "flat"])
def test_a_refused_later_add_or_upsert_loses_nothing(kind, monkeypatch):
    """FAISS refusing a later add (forced here): NSG, which FAISS builds once, is rebuilt with the new items;
    any other kind raises one line at once (no rebuild), and the index is exactly as it was."""
    from embedkit.index import _storage

    x = data()
    keys = [str(i) for i in range(N)]
    idx = VectorIndex(DIM, metric="l2", kind=kind)
    idx.add(keys[:200], x[:200])
    before = idx.search(x[:5], k=5)
    rebuilt = []
    real_compact = _storage.Storage.compact
    monkeypatch.setattr(_storage.Storage, "compact", lambda self, *a, **kw: rebuilt.append(1) or real_compact(self, *a, **kw))

    def refuse(self, fvecs, ids, show_progress=False):
        raise RuntimeError("Error in void faiss::Index::add(long, float const*) at Index.cpp:1: forced refusal")

    monkeypatch.setattr(_storage.Storage, "_faiss_add", refuse)
    if kind == "NSG32":  # the rebuild adds all items to a fresh graph: the add succeeds
        idx.add(keys[200:], x[200:])
        assert rebuilt and len(idx) == N and idx.search_keys(["250"], k=1).keys[0] != []
        return
    for call in (lambda: idx.add(keys[200:], x[200:]), lambda: idx.upsert(keys[:3], x[200:203])):
        with pytest.raises(ek.InputError) as err:
            call()
        text = str(err.value)
        one_line(text, kind)
        assert "forced refusal" in text and "nothing was added" in text
        after = idx.search(x[:5], k=5)
        assert len(idx) == 200 and after.keys == before.keys and np.array_equal(after.scores, before.scores)
        np.testing.assert_array_equal(idx.get_vectors(keys[:3]), x[:3].astype(np.float32))
    assert not rebuilt  # no rebuild for an index FAISS can add to: the error stands
