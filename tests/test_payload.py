"""Payloads: typed columns, save/load round trip, refusal of damaged payload arrays."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

import embedkit as ek
from embedkit.index import VectorIndex
from embedkit.index._payload import Columns

PAY = [{"name": "a\x00", "n": 1, "price": 2.5, "ok": True, "tags": ["x", "y\x00", "ü"]},
       {"n": 2, "tags": []},
       None,
       {"name": "", "price": 3, "ok": False, "tags": ["x"]}]


def make(kind="flat", n=4):
    idx = VectorIndex(3, kind=kind)
    idx.add([f"k{i}" for i in range(n)], np.eye(3, dtype=np.float32)[np.arange(n) % 3] + np.arange(n)[:, None],
            payload=PAY[:n])
    return idx


def test_payload_get_set_and_types():
    idx = make()
    assert idx.payload("k0") == PAY[0]
    assert idx.payload("k1") == {"n": 2, "tags": []}
    assert idx.payload("k2") == {}
    assert idx.payload("k3") == {"name": "", "price": 3.0, "ok": False, "tags": ["x"]}  # ints mix into a float field
    assert idx.payload_fields == {"name": "str", "n": "int", "price": "float", "ok": "bool", "tags": "strlist"}
    idx.set_payload(["k2"], [{"n": 7, "name": "z"}])
    assert idx.payload("k2") == {"n": 7, "name": "z"}
    idx.set_payload(["k0"], [{"n": 9}])                       # replaces the whole payload
    assert idx.payload("k0") == {"n": 9}
    with pytest.raises(ek.MissingKeyError):
        idx.set_payload(["nope"], [{}])
    with pytest.raises(ek.InputError, match="field 'n' is str but earlier values of 'n' are int"):
        idx.set_payload(["k1"], [{"n": "s"}])
    assert idx.payload("k1") == {"n": 2, "tags": []}          # a refused write changes nothing
    with pytest.raises(ek.InputError, match="not one dict"):
        idx.add(["q"], np.ones((1, 3)), payload={"a": 1})
    assert "q" not in idx


def test_upsert_keeps_or_replaces_payload_and_remove_clears_it():
    idx = make("hnsw")
    idx.upsert(["k0"], np.ones((1, 3)))
    assert idx.payload("k0") == PAY[0]
    idx.upsert(["k0", "new"], np.ones((2, 3)), payload=[{"n": 5}, {"n": 6}])
    assert idx.payload("k0") == {"n": 5} and idx.payload("new") == {"n": 6}
    idx.remove(["k1"])
    with pytest.raises(ek.MissingKeyError):
        idx.payload("k1")
    assert idx.search(np.ones(3, np.float32), 10, filter={"n": {"$gte": 2}}).keys[0].__len__() == 2
    idx.rebuild()
    assert idx.payload("k0") == {"n": 5} and idx.payload("k3")["tags"] == ["x"]


def test_dataframe_payload():
    df = pd.DataFrame({"cat": ["a", None, "b"], "price": [1.0, np.nan, 3.5], "n": [1, 2, 3],
                       "tags": [["x"], [], ["y", "z"]]})
    idx = VectorIndex(2)
    idx.add(["p", "q", "r"], np.ones((3, 2)), payload=df)
    assert idx.payload("q") == {"n": 2, "tags": []}
    assert idx.payload("r") == {"cat": "b", "price": 3.5, "n": 3, "tags": ["y", "z"]}
    assert isinstance(idx.payload("r")["n"], int)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_payload_save_load_round_trip(tmp_path, kind):
    idx = make(kind)
    idx.remove(["k1"])  # ids no longer dense for HNSW (tombstone), a hole in the saved rows
    idx.add(["k9"], np.ones((1, 3)), payload=[{"tags": ["q"], "n": 4}])
    idx.save(tmp_path / "ix")
    back = VectorIndex.load(tmp_path / "ix")
    for k in idx.keys:
        assert back.payload(k) == idx.payload(k)
    assert back.payload_fields == idx.payload_fields
    f = {"tags": {"$in": ["x", "q"]}}
    assert back.search(np.ones(3, np.float32), 5, filter=f).keys == idx.search(np.ones(3, np.float32), 5, filter=f).keys
    back.set_payload(["k9"], [{"n": 1}])  # the loaded table is writable
    assert back.payload("k9") == {"n": 1}
    with zipfile.ZipFile(tmp_path / "ix" / "payload.npz") as z:  # no pickled objects inside
        for name in z.namelist():
            arr = np.load(io.BytesIO(z.read(name)), allow_pickle=False)
            assert arr.dtype != object


def test_index_without_payload_saves_no_payload_file(tmp_path):
    idx = VectorIndex(2)
    idx.add(["a"], np.ones((1, 2)))
    idx.save(tmp_path / "ix")
    assert not (tmp_path / "ix" / "payload.npz").exists()
    assert VectorIndex.load(tmp_path / "ix").payload("a") == {}


def _encoded():
    t = Columns.from_dicts(PAY)
    return t.encode(np.arange(len(PAY))), len(PAY)


def test_encode_decode_exact():
    arrays, n = _encoded()
    back = Columns.decode(arrays, n)
    assert [back.get(i) for i in range(n)] == [d or {} for d in PAY]


def _mutations():
    def logical(fn):
        def apply(arrays, n):
            from embedkit.index import _payload_disk as P

            parts = P._unpack_parts(arrays, n)
            fn(parts)
            row = {k: v for k, v in parts.items() if k.endswith(("_present", "_values")) and v.shape[0] == n}
            return P._pack_parts({**parts, **row}, n)
        return apply

    return {
        "present flipped": lambda a, n: {**a, "c0_present": ~a["c0_present"]},
        "codes out of range": lambda a, n: {**a, "c0_values": np.full(n, 99, np.int32)},
        "wrong dtype": lambda a, n: {**a, "c1_values": a["c1_values"].astype(np.float32)},
        "missing array": lambda a, n: {k: v for k, v in a.items() if k != "c1_values"},
        "unexpected array": lambda a, n: {**a, "zz": np.zeros(n)},
        "packed garbage": lambda a, n: {**a, "packed": np.full_like(a["packed"], 7)},
        "packed truncated": lambda a, n: {**a, "packed": a["packed"][:, :3]},
        "list offsets decreasing": logical(lambda p: p.__setitem__("c4_offsets", p["c4_offsets"][::-1].copy())),
        "bad utf-8": logical(lambda p: p.__setitem__("c0_cats", np.full_like(p["c0_cats"], 0xff))),
        "duplicate names": logical(lambda p: p.update(names=np.frombuffer(b"xxxxx", np.uint8).copy(),
                                                      names_off=np.arange(6, dtype=np.int64))),
        "unknown kind": logical(lambda p: p.__setitem__("kinds", np.full_like(p["kinds"], 9))),
        "NaN float": lambda a, n: {**a, "c2_values": np.full(n, np.nan)},
    }


@pytest.mark.parametrize("name", list(_mutations()))
def test_damaged_payload_arrays_are_refused_with_one_line(name):
    arrays, n = _encoded()
    bad = _mutations()[name](dict(arrays), n)
    with pytest.raises(ek.StoreError, match="payload.npz: .*damaged") as info:
        Columns.decode(bad, n)
    assert "\n" not in str(info.value)


def test_damaged_payload_file_refused_at_load(tmp_path):
    idx = make()
    idx.save(tmp_path / "ix")
    p = tmp_path / "ix" / "payload.npz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ek.StoreError):
        VectorIndex.load(tmp_path / "ix")
    # a payload file that passes its checksum but disagrees with the index is refused too
    idx.save(tmp_path / "iy")
    arrays, _ = _encoded()
    arrays["c0_values"] = np.full(4, 50, np.int32)
    state = idx._storage.state()
    state.payload = arrays
    with pytest.raises(ek.StoreError, match="payload.npz"):
        VectorIndex._from_state(state, {})
