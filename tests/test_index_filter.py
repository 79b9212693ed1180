"""Payload filters: the language (filter_mask), and filtered search against numpy brute force
on the matching subset for every metric and kind, under random add/upsert/remove sequences."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedkit as ek
from embedkit.index import VectorIndex, _search, compile_filter, filter_mask

KEYS = ["a", "b", "c", "d", "e"]
PAYLOAD = [
    {"price": 5, "tags": ["red", "big"], "cat": "shoes", "ok": True},
    {"price": 15.5, "tags": [], "cat": "hats"},
    {"cat": "shoes", "tags": ["red"], "ok": False},
    None,
    {"price": -1, "cat": "socks", "ok": True, "tags": ["blue"]},
]


@pytest.mark.parametrize("flt, expected", [
    ({}, "abcde"),
    ({"cat": "shoes"}, "ac"),
    ({"cat": {"$ne": "shoes"}}, "bde"),                      # absent field matches $ne
    ({"price": {"$gt": 5}}, "b"),
    ({"price": {"$gte": 5, "$lt": 16}}, "ab"),
    ({"price": {"$lte": 5}}, "ae"),
    ({"price": {"$in": [5, -1]}}, "ae"),
    ({"price": {"$nin": [5]}}, "bcde"),
    ({"tags": "red"}, "ac"),                                  # any element of a list matches
    ({"tags": {"$in": ["blue", "big"]}}, "ae"),
    ({"tags": {"$nin": ["red"]}}, "bde"),
    ({"tags": {"$ne": "red"}}, "bde"),
    ({"tags": {"$gt": "c"}}, "ac"),
    ({"tags": {"$lt": "c"}}, "ae"),
    ({"ok": True}, "ae"),
    ({"ok": {"$ne": True}}, "bcd"),
    ({"cat": {"$gt": "hats"}}, "ace"),                       # strings compare by code point
    ({"$or": [{"cat": "hats"}, {"ok": True}]}, "abe"),
    ({"$and": [{"cat": "shoes"}, {"ok": False}]}, "c"),
    ({"$not": {"cat": "shoes"}}, "bde"),
    ({"price": {"$not": {"$gt": 0}}}, "cde"),
    ({"$key": "d"}, "d"),
    ({"$key": {"$in": ["a", "e", "zz"]}}, "ae"),
    ({"$key": {"$nin": ["a", "b"]}, "cat": "shoes"}, "c"),
    ({"$key": {"$ne": "a"}}, "bcde"),
    ({"nofield": 3}, ""),                                     # a field no item has: absent everywhere
    ({"nofield": {"$ne": 3}}, "abcde"),
])
def test_filter_language(flt, expected):
    mask = filter_mask(flt, KEYS, PAYLOAD)
    assert mask.dtype == bool and "".join(k for k, m in zip(KEYS, mask) if m) == expected


@pytest.mark.parametrize("flt, message", [
    ({"$and": [{"cat": "x"}, {"price": {"$gt": "x"}}]}, r"^filter: \$and\[1\]\.price: \$gt expects a number"),
    ({"price": {"$foo": 1}}, r"^filter: price: unknown operator '\$foo'"),
    ({"$nor": []}, r"^filter: \$nor: unknown operator"),
    ({"tags": ["a"]}, r"^filter: tags: a list value"),
    ({"ok": {"$gt": True}}, r"^filter: ok: \$gt expects a number or a string"),
    ({"ok": 1}, r"^filter: ok: \$eq expects true or false"),
    ({"cat": 3}, r"^filter: cat: \$eq expects a string"),
    ({"$key": {"$gt": "a"}}, r"^filter: \$key: \$gt is not supported"),
    ({"$key": 3}, r"^filter: \$key: \$eq expects keys"),
    ({"$or": []}, r"^filter: \$or: expects a non-empty list"),
    ({"$or": [3]}, r"^filter: \$or\[0\]: expected a filter object"),
    ({"price": {"$in": 5}}, r"^filter: price: \$in expects a list"),
    ({"price": {"$in": [[1]]}}, r"^filter: price: \$in\[0\] must be"),
    ({"price": {"a": 1}}, r"^filter: price: an object value"),
    ([1], r"^filter: must be a JSON object"),
    ("{not json", r"^filter: not valid JSON"),
])
def test_filter_errors_are_one_line_and_name_the_part(flt, message):
    with pytest.raises(ek.InputError, match=message) as info:
        filter_mask(flt, KEYS, PAYLOAD)
    assert "\n" not in str(info.value)


def test_filter_accepts_json_text_and_compiled_filters():
    f = compile_filter('{"cat": "shoes"}')
    assert filter_mask(f, KEYS, PAYLOAD).tolist() == [True, False, True, False, False]
    assert filter_mask({"$key": "b"}, KEYS).tolist() == [False, True, False, False, False]  # no payload needed
    assert not filter_mask({"x": 1}, KEYS).any()


def test_payload_type_errors():
    with pytest.raises(ek.InputError, match=r"field 'x' is str but earlier values of 'x' are int"):
        filter_mask({}, ["a", "b"], [{"x": 1}, {"x": "s"}])
    with pytest.raises(ek.InputError, match=r"lists may hold strings only"):
        filter_mask({}, ["a"], [{"x": [1]}])
    with pytest.raises(ek.InputError, match=r"must be finite"):
        filter_mask({}, ["a"], [{"x": float("nan")}])
    with pytest.raises(ek.InputError, match=r"lone surrogate"):
        filter_mask({}, ["a"], [{"x": "\udc80"}])
    with pytest.raises(ek.InputError, match=r"has 1 entries but there are 2 keys"):
        filter_mask({}, ["a", "b"], [{}])
    # ints and floats mix into one numeric field
    assert filter_mask({"x": {"$gt": 1.5}}, ["a", "b"], [{"x": 1}, {"x": 2.5}]).tolist() == [False, True]


# ---------------------------------------------------------------- filtered search vs brute force
def brute(vecs, q, metric, k):
    """Exact top-k ids of q among vecs rows (scores as VectorIndex reports them)."""
    if metric == "cosine":
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
        s = vecs @ q
        order = np.argsort(-s, kind="stable")
    elif metric == "ip":
        s = vecs @ q
        order = np.argsort(-s, kind="stable")
    else:
        s = np.linalg.norm(vecs - q, axis=1)
        order = np.argsort(s, kind="stable")
    return order[:k], s[order[:k]]


KIND_OPTS = {"flat": {}, "hnsw": {"ef_search": 64}, "ivf": {"nlist": 8, "nprobe": 8},
             "ivfpq": {"nlist": 4, "nprobe": 4, "pq_m": 4, "refine": 50}}


@pytest.mark.parametrize("kind", list(KIND_OPTS))
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_filtered_search_matches_brute_force_on_the_subset(kind, metric, monkeypatch):
    # force both plans: the exact scan of the subset, and FAISS with an IDSelectorBitmap
    rng = np.random.default_rng(7)
    n, d, k = 400, 8, 10
    x = rng.normal(size=(n, d)).astype(np.float32)
    cat = rng.integers(0, 20, n)
    keys = [f"i{i}" for i in range(n)]
    idx = VectorIndex(d, metric=metric, kind=kind, **KIND_OPTS[kind])
    idx.add(keys, x, payload=[{"cat": int(c), "tag": ["even" if c % 2 == 0 else "odd"]} for c in cat])
    q = rng.normal(size=(6, d)).astype(np.float32)
    if kind == "flat":  # flat batches are always exact in numpy; one query at a time takes the FAISS path
        q = q[:1]
    for exact_min in (10**9, 0):
        monkeypatch.setattr(_search, "EXACT_MIN", exact_min)
        for name in ("FLAT_EXACT_SHARE", "HNSW_EXACT_FACTOR", "IVF_EXACT_FACTOR"):
            monkeypatch.setattr(_search, name, 1e9 if exact_min else 0.0)
        for flt, m in [({"cat": {"$lt": 2}}, cat < 2), ({"tag": "even"}, cat % 2 == 0), ({"cat": {"$gte": 0}}, cat >= 0),
                       ({"cat": 3}, cat == 3)]:
            sub = np.flatnonzero(m)
            res = idx.search(q, k, filter=flt)
            hits = total = 0
            for row, qi in zip(res.keys, q):
                assert len(row) == min(k, len(sub))
                assert all(m[int(key[1:])] for key in row)  # never a non-matching item
                top, _ = brute(x[sub], qi, metric, k)
                hits += len(set(row) & {keys[sub[t]] for t in top})
                total += len(top)
            if kind == "flat" or exact_min:
                assert hits == total
            else:
                assert hits / total >= 0.9, (kind, metric, flt, hits / total)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_updates_then_filtered_search_property(data):
    kind = data.draw(st.sampled_from(["flat", "hnsw", "ivf"]), label="kind")
    metric = data.draw(st.sampled_from(["cosine", "ip", "l2"]), label="metric")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    d = 4
    lean = data.draw(st.booleans(), label="exact_vectors=False")
    idx = VectorIndex(d, metric=metric, kind=kind, rebuild_fraction=0.3, exact_vectors=not lean,
                      **({"nlist": 4, "nprobe": 4} if kind == "ivf" else {}))
    truth: dict[str, tuple[np.ndarray, dict]] = {}
    first = [f"k{i}" for i in range(60)]
    vecs = rng.normal(size=(60, d)).astype(np.float32)
    pays = [{"g": int(rng.integers(0, 4)), "t": [str(v) for v in rng.choice(list("xyz"), rng.integers(0, 3))]}
            for _ in first]
    idx.add(first, vecs, payload=pays)
    truth.update({k: (v, p) for k, v, p in zip(first, vecs, pays)})
    for step in range(data.draw(st.integers(1, 6), label="steps")):
        op = data.draw(st.sampled_from(["add", "upsert", "remove", "set_payload"]), label=f"op{step}")
        live = sorted(truth)
        if op == "add":
            new = [f"n{step}_{i}" for i in range(int(rng.integers(1, 8)))]
            v = rng.normal(size=(len(new), d)).astype(np.float32)
            p = [{"g": int(rng.integers(0, 4))} for _ in new]
            idx.add(new, v, payload=p)
            truth.update({k: (vv, pp) for k, vv, pp in zip(new, v, p)})
        elif op == "upsert" and live:
            ks = list(rng.choice(live, min(len(live), int(rng.integers(1, 10))), replace=False))
            v = rng.normal(size=(len(ks), d)).astype(np.float32)
            if rng.random() < 0.5:
                idx.upsert(ks, v)  # payload kept
                truth.update({k: (vv, truth[k][1]) for k, vv in zip(ks, v)})
            else:
                p = [{"g": int(rng.integers(0, 4)), "t": ["x"]} for _ in ks]
                idx.upsert(ks, v, payload=p)
                truth.update({k: (vv, pp) for k, vv, pp in zip(ks, v, p)})
        elif op == "remove" and len(live) > 5:
            ks = list(rng.choice(live, int(rng.integers(1, len(live) // 2)), replace=False))
            idx.remove(ks)
            for k in ks:
                del truth[k]
        elif op == "set_payload" and live:
            ks = list(rng.choice(live, min(3, len(live)), replace=False))
            p = [{"g": int(rng.integers(0, 4))} for _ in ks]
            idx.set_payload(ks, p)
            truth.update({k: (truth[k][0], pp) for k, pp in zip(ks, p)})
    live = sorted(truth)
    assert sorted(idx.keys) == live
    for k in live[:5]:
        assert idx.payload(k) == truth[k][1]
    flt = data.draw(st.sampled_from([{"g": 1}, {"g": {"$in": [0, 3]}}, {"t": "x"}, {"$not": {"g": 2}},
                                     {"$or": [{"g": 0}, {"t": {"$in": ["y", "z"]}}]}, {"g": {"$gte": 0}}]), label="filter")
    m = filter_mask(flt, live, [truth[k][1] for k in live])
    sub = [k for k, ok in zip(live, m) if ok]
    q = rng.normal(size=d).astype(np.float32)
    res = idx.search(q, 5, filter=flt)
    assert set(res.keys[0]) <= set(sub)
    assert len(res.keys[0]) == min(5, len(sub))
    if sub:
        top, s = brute(np.array([truth[k][0] for k in sub]), q, metric, 5)
        if kind == "flat":
            np.testing.assert_allclose(res.scores[0], s, rtol=1e-4, atol=1e-4)
        else:  # a small subset is searched exactly; a large one through FAISS with the bitmap
            assert len(set(res.keys[0]) & {sub[t] for t in top}) >= min(5, len(sub)) - 1
    # search_keys with a filter never returns the query itself or a non-matching item
    if live:
        r2 = idx.search_keys(live[0], 5, filter=flt)
        assert live[0] not in r2.keys[0] and set(r2.keys[0]) <= set(sub)


def test_filtered_search_returns_k_whenever_k_match_and_nothing_else():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    keys = [f"k{i}" for i in range(300)]
    idx = VectorIndex(6, kind="hnsw")
    idx.add(keys, x, payload=[{"v": i} for i in range(300)])
    assert idx.search(x[0], 10, filter={"v": {"$lt": 3}}).keys[0] and \
        len(idx.search(x[0], 10, filter={"v": {"$lt": 3}}).keys[0]) == 3
    assert idx.search(x[:2], 10, filter={"v": {"$gt": 1000}}).keys == [[], []]
    r = idx.search_keys(["k0", "k1"], 10, filter={"$key": {"$in": ["k0", "k1", "k2"]}})
    assert r.keys == [["k1", "k2"] if r.keys[0][0] == "k1" else ["k2", "k1"], r.keys[1]]
    assert "k0" not in r.keys[0] and "k1" not in r.keys[1]
    assert idx.search_keys("k5", 300, filter={"$key": {"$ne": "k7"}}).keys[0].__len__() == 298


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_cached_filter_mask_follows_writes_and_rebuilds(kind):
    rng = np.random.default_rng(1)
    keys = [f"k{i}" for i in range(100)]
    idx = VectorIndex(4, metric="l2", kind=kind, rebuild_fraction=0.2)
    idx.add(keys, rng.normal(size=(100, 4)), payload=[{"g": i % 2} for i in range(100)])
    f = {"g": 0}
    q = rng.normal(size=4).astype(np.float32)
    assert len(idx.search(q, 100, filter=f).keys[0]) == 50
    idx.remove(keys[:60])                     # HNSW: past rebuild_fraction, so the graph is rebuilt
    assert sorted(idx.search(q, 100, filter=f).keys[0]) == sorted(keys[60:100:2])
    idx.set_payload(keys[61:63], [{"g": 0}, {"g": 0}])
    assert sorted(idx.search(q, 100, filter=f).keys[0]) == sorted(keys[60:100:2] + ["k61"])
    idx.upsert(["k60"], q[None, :])           # same filter again, after an upsert (payload kept)
    assert idx.search(q, 1, filter=f).keys[0] == ["k60"]


def test_deeply_nested_filter_text_is_one_line_not_a_recursion_error():
    """Thousands of levels (json.loads would overflow the recursion limit) are refused before parsing,
    with the same line for every caller of filter text; brackets inside strings do not count."""
    from embedkit.index._filter import parse_filter_text

    deep = '{"a":' * 2000 + "1" + "}" * 2000
    for call in (lambda: ek.compile_filter(deep), lambda: parse_filter_text(deep, "--filter")):
        with pytest.raises(ek.InputError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg and "nested more than 100 levels deep" in msg and "Recursion" not in msg
    assert str(pytest.raises(ek.InputError, parse_filter_text, "[" * 5000, "--filter").value).startswith("--filter: ")
    assert ek.compile_filter('{"a": "' + "{[" * 300 + '\\"}}"}').spec == {"a": "{[" * 300 + '"}}'}
    # the deepest filters the language accepts still parse from text
    chain = '{"$and": [' * 32 + '{"x": {"$not": {"$in": [1, 2]}}}' + "]}" * 32
    ek.compile_filter(chain)
    with pytest.raises(ek.InputError, match="nested deeper than 32 levels"):
        ek.compile_filter('{"$and": [' * 33 + '{"x": 1}' + "]}" * 33)
    not_chain = {"x": {"$gt": 1}}
    for _ in range(200):  # a field's own $not inside $not...: bounded too (was unbounded recursion)
        not_chain = {"x": {"$not": not_chain["x"]}}
    with pytest.raises(ek.InputError, match=r"\$not nested more than 64 levels deep"):
        ek.compile_filter(not_chain)
