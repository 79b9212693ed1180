"""Load test of `embedkit serve` on loopback: concurrent readers and writers for a fixed time.

A real server process serves one index of random vectors. ``--clients`` threads, each with its
own keep-alive connection, send for ``--duration`` seconds a mix of neighbour look-ups (GET
/neighbors), searches by vector (POST /search) and upserts (POST /items, every write journalled
and fsynced before it is acknowledged). Then the server is killed with SIGKILL (no shutdown
hook runs), restarted, and every acknowledged write is read back and compared bit for bit; then
it is stopped gracefully (the journal is folded into the saved index) and the store is checked
once more without the service. Prints requests/s, p50/p99 latency per request type, errors
(must be 0) and lost writes (must be 0), plus what saving the whole index per write would cost.

``--hostile`` adds, for the same duration, what a local attacker or an impatient operator does:

* amplification: one client sends POST /search with 3,000 query vectors and k=1000 in a loop
  (the service must refuse it with 413/429 quickly, not run it for tens of seconds);
* idle sockets: ``--idle-sockets`` connections opened at the start that never send a byte, plus
  some that send half a request line (the service must time them out, not lock clients out);
* a racing rebuild: a second served index "rebuilt" is replaced every ``--rebuild-every`` seconds
  by ``embedkit index build --force`` (a separate process; none in the last 30% of the run) while a writer thread upserts into it
  and a reader thread loads it with ``Store.load`` / ``Store.info`` as other commands would.
  A rebuild must never be undone (the final copy holds the last rebuild's marker key), writes
  acknowledged after the last rebuild finished must survive, and no reader may see a "damaged"
  or "no index named" error.

    python benchmarks/serve_bench.py --items 10000 --dim 64 --clients 8 --duration 20
    python benchmarks/serve_bench.py --items 10000 --dim 64 --clients 8 --duration 20 --hostile
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


def start_server(store: Path, port: int, compact_every: int, names=("bench",)) -> subprocess.Popen:
    import httpx

    env = dict(os.environ, EMBEDKIT_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", str(store), "serve", *names,
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


ALARMS = ("damaged", "no index named", "checksum", "truncated", "not listed")


def is_alarm(text: str) -> bool:
    return any(a in text for a in ALARMS)


def amplifier(url, args, deadline, out):
    """POST /search with 3,000 queries x k=1000 in a loop: statuses and seconds per request."""
    import httpx

    rng = np.random.default_rng(7)
    body = {"vectors": rng.standard_normal((3000, args.dim)).astype(np.float32).round(4).tolist(), "k": 1000}
    statuses, secs = {}, []
    with httpx.Client(base_url=url, timeout=120) as h:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                st = str(h.post("/indexes/bench/search", json=body).status_code)
            except Exception as exc:  # noqa: BLE001 - reported
                st = type(exc).__name__
            statuses[st] = statuses.get(st, 0) + 1
            secs.append(time.perf_counter() - t0)
    out["amplify"] = (statuses, secs)


def idle_sockets(port, n, deadline, out):
    """Open n connections that send nothing (and n//10 that send half a request line); report how
    many the server closed by the end."""
    socks = []
    for i in range(n + n // 10):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        if i >= n:
            s.sendall(b"GET /indexes HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        s.setblocking(False)
        socks.append(s)
    opened = len(socks)
    while time.perf_counter() < deadline:
        time.sleep(0.2)
    closed = 0
    for s in socks:
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    out["idle"] = (opened, closed)


def write_vectors(path: Path, keys, vecs):
    with open(path, "w") as fh:
        fh.write(f"{len(keys)} {vecs.shape[1]}\n")
        for k, v in zip(keys, vecs):
            fh.write(k + " " + " ".join(f"{x:.5f}" for x in v) + "\n")


def rebuilder(root, args, deadline, out):
    """`embedkit index build --force` of "rebuilt" every --rebuild-every seconds, each generation with
    its marker key gen-<i>; records when each finished."""
    rng = np.random.default_rng(11)
    base = [f"r{i}" for i in range(args.rebuild_items)]
    done, failures = [], []
    tmp = Path(root).parent / (Path(root).name + "-vectors")
    tmp.mkdir(exist_ok=True)
    gen = 0
    stop = deadline - 0.3 * args.duration  # the last part of the run has writes after the last rebuild
    while time.perf_counter() + args.rebuild_every < stop:
        time.sleep(args.rebuild_every)
        gen += 1
        f = tmp / f"gen{gen}.txt"
        write_vectors(f, base + [f"gen-{gen}"], rng.standard_normal((len(base) + 1, args.dim)).astype(np.float32))
        r = subprocess.run([sys.executable, "-m", "embedkit", "--store", str(root), "index", "build", str(f),
                            "--name", "rebuilt", "--force", "--kind", "flat"], capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(r.stderr.strip()[-300:])
        else:
            done.append((gen, time.perf_counter()))
    out["rebuild"] = (done, failures)


def rebuilt_writer(url, args, deadline, out):
    """Upserts into "rebuilt" while it is rebuilt: (key, vector, start, end) of each acknowledged one."""
    import httpx

    rng = np.random.default_rng(13)
    acked, errors, lat = [], [], []
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as h:
        i = 0
        while time.perf_counter() < deadline:
            key, vec = f"rw{i}", rng.standard_normal(args.dim).astype(np.float32)
            i += 1
            t0 = time.perf_counter()
            try:
                r = h.post("/indexes/rebuilt/items", json={"items": [{"key": key, "vector": vec.tolist()}]})
                if r.status_code == 200:
                    acked.append((key, vec, t0, time.perf_counter()))
                    lat.append(time.perf_counter() - t0)
                else:
                    errors.append(f"rebuilt upsert {r.status_code} {r.text[:200]}")
                r = h.get("/indexes/rebuilt/neighbors", params={"key": "r1", "k": 5})
                if r.status_code != 200:
                    errors.append(f"rebuilt neighbors {r.status_code} {r.text[:200]}")
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)
    out["rebuilt_writer"] = (acked, errors, lat)


def store_reader(root, deadline, out):
    """Store.info / Store.load of "rebuilt" in a loop, as `embedkit info` / `query` do during rebuilds."""
    from embedkit.store import Store

    store = Store(root)
    n, alarms = 0, []
    while time.perf_counter() < deadline:
        try:
            store.info("rebuilt")
            store.load("rebuilt")
            n += 1
        except Exception as exc:  # noqa: BLE001
            alarms.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.02)
    out["reader"] = (n, alarms)


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


def report_hostile(url, extra, errors) -> tuple[bool, list[str]]:
    """Check the hostile mix after the SIGKILL + restart; returns (ok, lines to print)."""
    import httpx

    lines = []
    statuses, secs = extra.get("amplify", ({}, []))
    lines.append(f"amplification (3000 queries x k=1000): {sum(statuses.values())} requests, statuses {statuses}, "
                 f"p50 {pct(secs, 50):.0f} ms, max {max(secs) * 1000 if secs else float('nan'):.0f} ms")
    opened, closed = extra.get("idle", (0, 0))
    lines.append(f"idle sockets: {opened} opened, {closed} closed by the server before the end")
    done, failures = extra.get("rebuild", ([], []))
    acked_rb, rb_errors, rb_lat = extra.get("rebuilt_writer", ([], [], []))
    n_reads, alarms = extra.get("reader", (0, []))
    errors.extend(rb_errors)
    http_alarms = [e for e in errors if is_alarm(e)]
    ok = not failures and not alarms and not http_alarms
    last_gen, lost_rb, kept_rebuild = None, 0, True
    with httpx.Client(base_url=url, timeout=30) as h:
        if done:
            last_gen, t_done = done[-1]
            r = h.get(f"/indexes/rebuilt/items/gen-{last_gen}")
            kept_rebuild = r.status_code == 200
            if last_gen > 1:
                kept_rebuild &= h.get(f"/indexes/rebuilt/items/gen-{last_gen - 1}").status_code == 404
            after = [(k, v) for k, v, t0, _ in acked_rb if t0 > t_done]
            for k, v in after:
                r = h.get(f"/indexes/rebuilt/items/{k}")
                if r.status_code != 200 or not np.array_equal(np.asarray(r.json()["vector"], np.float32), v):
                    lost_rb += 1
        else:
            after = []
    ok = ok and kept_rebuild and lost_rb == 0 and bool(done)
    lines.append(f"racing --force rebuilds: {len(done)} done, {len(failures)} failed"
                 + (f" (first: {failures[0]})" if failures else "")
                 + f"; last rebuild kept after SIGKILL + restart: {'yes' if kept_rebuild else 'NO'}")
    lines.append(f"writes to the rebuilt index: {len(acked_rb)} acknowledged (p99 {pct(rb_lat, 99):.1f} ms), "
                 f"{len(after)} after the last rebuild, lost {lost_rb}; write/read errors {len(rb_errors)}"
                 + (f" (first: {rb_errors[0]})" if rb_errors else ""))
    lines.append(f"Store.info+load racing the rebuilds: {n_reads} reads, {len(alarms)} errors"
                 + (f" (first: {alarms[0]})" if alarms else "")
                 + f"; false 'damaged'/'no index' reports over HTTP: {len(http_alarms)}")
    return ok, lines


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
    ap.add_argument("--hostile", action="store_true",
                    help="add amplification requests, idle sockets and a racing --force rebuild")
    ap.add_argument("--idle-sockets", type=int, default=300, help="idle connections under --hostile (default: 300)")
    ap.add_argument("--rebuild-every", type=float, default=2.0,
                    help="seconds between --force rebuilds under --hostile (default: 2)")
    ap.add_argument("--rebuild-items", type=int, default=2000,
                    help="items of the index rebuilt under --hostile (default: 2000)")
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

    names = ("bench",)
    if args.hostile:
        rb = rng.standard_normal((args.rebuild_items, args.dim)).astype(np.float32)
        rkeys = [f"r{i}" for i in range(args.rebuild_items)]
        store.save("rebuilt", ek.Embeddings(rkeys, rb).to_index(metric="cosine", kind="flat"), overwrite=True)
        names = ("bench", "rebuilt")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(root, port, args.compact_every, names)
    out, acked, threads, extra = {}, {}, [], {}
    deadline = time.perf_counter() + args.duration
    t_start = time.perf_counter()
    if args.hostile:
        for target, targs in ((idle_sockets, (port, args.idle_sockets, deadline, extra)),
                              (amplifier, (url, args, deadline, extra)),
                              (rebuilder, (root, args, deadline, extra)),
                              (rebuilt_writer, (url, args, deadline, extra)),
                              (store_reader, (root, deadline, extra))):
            t = threading.Thread(target=target, args=targs)
            t.start()
            threads.append(t)
        time.sleep(0.5)  # the idle sockets are open before the clients start
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
    proc = start_server(root, port, args.compact_every, names)
    restart_s = time.perf_counter() - t0
    lost_kill, count = check_acked(url, acked)
    hostile_ok, hostile_lines = True, []
    if args.hostile:
        hostile_ok, hostile_lines = report_hostile(url, extra, errors)
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
    for line in hostile_lines:
        print(line)
    ok = (not errors and lost_kill == 0 and lost_graceful == 0 and count == args.items + len(new_keys)
          and hostile_ok)
    print("RESULT: " + ("ok (0 errors, 0 lost writes)" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
