"""Load test of `embedkit serve` on loopback: concurrent readers and writers for a fixed time.

A real server process serves one index of random vectors. ``--clients`` threads, each with its
own keep-alive connection, send for ``--duration`` seconds a mix of neighbour look-ups (GET
/neighbors), searches by vector (POST /search) and upserts (POST /items, every write journalled
and fsynced before it is acknowledged). Then the server is killed with SIGKILL (no shutdown
hook runs), restarted, and every acknowledged write is read back and compared bit for bit; then
it is stopped gracefully (the journal is folded into the saved index) and the store is checked
once more without the service. Prints requests/s, p50/p99 latency per request type, errors
(must be 0) and lost writes (must be 0), plus what saving the whole index per write would cost.

    python benchmarks/serve_bench.py --items 10000 --dim 64 --clients 8 --duration 20
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, port: int, compact_every: int) -> subprocess.Popen:
    import httpx

    env = dict(os.environ, EMBEDKIT_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", str(store), "serve", "bench",
                             "--port", str(port), "--log-level", "warning", "--compact-every", str(compact_every)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)


def client_loop(cid, url, args, keys, deadline, out, acked):
    import httpx

    rng = np.random.default_rng(1000 + cid)
    lat = {"neighbors": [], "search": [], "upsert": []}
    errors = []
    mine = {}
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as h:
        while time.perf_counter() < deadline:
            r = rng.random()
            t0 = time.perf_counter()
            try:
                if r < args.write_fraction:
                    kind = "upsert"
                    # each client writes its own keys (so "last acknowledged" is well defined); half replace
                    j = int(rng.integers(0, max(1, args.keys_per_client)))
                    items = []
                    for b in range(args.batch):
                        key = f"w{cid}-{(j + b) % args.keys_per_client}"
                        vec = rng.standard_normal(args.dim).astype(np.float32)
                        items.append((key, vec))
                    resp = h.post("/indexes/bench/items", json={"items": [{"key": k, "vector": v.tolist()} for k, v in items]})
                    if resp.status_code == 200:
                        for k, v in items:
                            mine[k] = v
                elif r < args.write_fraction + args.search_fraction:
                    kind = "search"
                    resp = h.post("/indexes/bench/search",
                                  json={"vector": rng.standard_normal(args.dim).astype(np.float32).tolist(), "k": args.k})
                else:
                    kind = "neighbors"
                    resp = h.get("/indexes/bench/neighbors", params={"key": keys[int(rng.integers(len(keys)))], "k": args.k})
                ok = resp.status_code == 200
                if not ok:
                    errors.append(f"{kind} {resp.status_code} {resp.text[:200]}")
            except Exception as exc:  # a transport error counts as an error too
                kind, ok = "error", False
                errors.append(f"{type(exc).__name__}: {exc}")
            if ok:
                lat[kind].append(time.perf_counter() - t0)
    out[cid] = (lat, errors)
    acked.update(mine)


def check_acked(url: str, acked: dict) -> tuple[int, int]:
    """(missing or different writes, count reported by the server)."""
    import httpx

    lost = 0
    with httpx.Client(base_url=url, timeout=30) as h:
        for key, vec in acked.items():
            r = h.get(f"/indexes/bench/items/{key}")
            if r.status_code != 200 or not np.array_equal(np.asarray(r.json()["vector"], np.float32), vec):
                lost += 1
        count = h.get("/indexes/bench").json()["count"]
    return lost, count


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--kind", default="flat", help="index kind (default: flat)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load (default: 20)")
    ap.add_argument("--write-fraction", type=float, default=0.1, help="share of upserts (default: 0.1)")
    ap.add_argument("--search-fraction", type=float, default=0.2, help="share of searches by vector (default: 0.2)")
    ap.add_argument("--batch", type=int, default=1, help="items per upsert (default: 1)")
    ap.add_argument("--keys-per-client", type=int, default=200, help="distinct keys each client writes (default: 200)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--compact-every", type=int, default=1000)
    ap.add_argument("--store", default=None, help="store directory (default: a temporary one)")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.duration <= 600):
        ap.error("--clients must be in [1, 64] and --duration in (0, 600]")

    import embedkit as ek
    from embedkit.store import Store

    root = Path(args.store or tempfile.mkdtemp(prefix="serve-bench-"))
    store = Store(root)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((32, args.dim)).astype(np.float32)
    vecs = centres[rng.integers(0, 32, args.items)] + 0.3 * rng.standard_normal((args.items, args.dim)).astype(np.float32)
    keys = [f"item{i}" for i in range(args.items)]
    index = ek.Embeddings(keys, vecs).to_index(metric="cosine", kind=args.kind)
    t0 = time.perf_counter()
    store.save("bench", index, meta={"source": "serve_bench"}, overwrite=True)
    save_s = time.perf_counter() - t0

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(root, port, args.compact_every)
    out, acked, threads = {}, {}, []
    deadline = time.perf_counter() + args.duration
    t_start = time.perf_counter()
    for cid in range(args.clients):
        t = threading.Thread(target=client_loop, args=(cid, url, args, keys, deadline, out, acked))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    proc.send_signal(signal.SIGKILL)  # a crash: no shutdown hook, no final compaction
    proc.wait()

    lat = {"neighbors": [], "search": [], "upsert": []}
    errors = []
    for cl, er in out.values():
        for kname, xs in cl.items():
            lat[kname].extend(xs)
        errors.extend(er)
    total = sum(len(x) for x in lat.values()) + len(errors)
    new_keys = {k for k in acked}

    t0 = time.perf_counter()
    proc = start_server(root, port, args.compact_every)
    restart_s = time.perf_counter() - t0
    lost_kill, count = check_acked(url, acked)
    proc.send_signal(signal.SIGTERM)  # graceful: folds the journal into the saved index
    proc.wait(120)
    final = store.load("bench")
    lost_graceful = sum(1 for k, v in acked.items() if k not in final or not np.array_equal(final.get_vectors([k])[0], v))

    print(f"serve_bench: {args.items} items x dim {args.dim} ({args.kind}, cosine), {args.clients} clients, "
          f"{args.duration:.0f} s, writes {args.write_fraction:.0%} x {args.batch} item(s), searches "
          f"{args.search_fraction:.0%}, k={args.k}, loopback, {os.cpu_count()} CPUs")
    print(f"{'request':<12}{'count':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for kname in ("neighbors", "search", "upsert"):
        xs = lat[kname]
        print(f"{kname:<12}{len(xs):>8}{len(xs) / elapsed:>10.1f}{pct(xs, 50):>10.2f}{pct(xs, 99):>10.2f}")
    every = [x for xs in lat.values() for x in xs]
    print(f"{'all':<12}{total:>8}{total / elapsed:>10.1f}{pct(every, 50):>10.2f}{pct(every, 99):>10.2f}")
    print(f"errors: {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    print(f"acknowledged writes: {len(acked)} distinct keys; after SIGKILL + restart: lost {lost_kill}, "
          f"count {count} (expected {args.items + len(new_keys)}); after graceful stop, loaded without the "
          f"service: lost {lost_graceful}")
    print(f"restart with journal replay: {restart_s:.2f} s (process start included)")
    print(f"one full atomic save of this index (what save-per-write would cost per write): {save_s * 1000:.1f} ms")
    ok = not errors and lost_kill == 0 and lost_graceful == 0 and count == args.items + len(new_keys)
    print("RESULT: " + ("ok (0 errors, 0 lost writes)" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
