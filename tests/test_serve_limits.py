"""The service under hostile load (issue 12, items 6, 7 and 12): work per request, concurrent heavy
searches, half-open and idle connections, DNS rebinding (Host allow-list), authentication before
the body is read, write tokens, and keys holding control characters."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.errors import InputError  # noqa: E402
from embedkit.serve import create_app  # noqa: E402
from embedkit.serve._limits import WorkLimits, host_of, server_config  # noqa: E402
from embedkit.store import Store  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1"
DIM = 4


@pytest.fixture()
def store_root(tmp_path):
    root = tmp_path / "store"
    rng = np.random.default_rng(0)
    keys = [f"k{i:03d}" for i in range(60)]
    Store(root).save("toy", ek.Embeddings(keys, rng.standard_normal((60, DIM)).astype(np.float32)).to_index())
    long_keys = [f"{i:03d}" + "x" * 200 for i in range(50)]
    Store(root).save("long", ek.Embeddings(long_keys, rng.standard_normal((50, DIM)).astype(np.float32)).to_index())
    return root


def client(root, token=TOKEN, base_url=LOCAL, **kw):
    return TestClient(create_app(root, token=token, **kw), base_url=base_url)


def error_of(r) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and body["error"]
    return body["error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """The CLI's uvicorn configuration (server_config) in a thread on a free port."""

    def __init__(self, app, **kw):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(server_config(app, port=self.port, log_level="warning", **kw))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout=5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection; and how long that took."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for over {limit} s (got {data[:200]!r})") from None
    except ConnectionResetError:
        pass
    return data, time.monotonic() - t0


# ----------------------------------------------------------------------------- item 6: work per request
def test_amplifying_search_is_refused_before_the_work(store_root, monkeypatch):
    calls = []
    real = ek.VectorIndex.search
    monkeypatch.setattr(ek.VectorIndex, "search", lambda self, *a, **kw: (calls.append(1), real(self, *a, **kw))[1])
    with client(store_root) as c:
        r = c.post("/indexes/toy/search", json={"vectors": [[1.0, 0.0, 0.0, 0.0]] * 200, "k": 1000})
        assert r.status_code == 413 and "200 queries x k=1000" in error_of(r) and "100000" in error_of(r)
        assert calls == []  # refused before any search ran
        ok = c.post("/indexes/toy/search", json={"vectors": [[1.0, 0.0, 0.0, 0.0]] * 100, "k": 1000})
        assert ok.status_code == 200 and len(ok.json()["results"]) == 100 and len(ok.json()["results"][0]) == 60
    with client(store_root, limits=WorkLimits(max_results=50)) as c:
        r = c.post("/indexes/toy/search", json={"vectors": [[1.0, 0.0, 0.0, 0.0]] * 6, "k": 10})
        assert r.status_code == 413 and "limit is 50" in error_of(r)
        assert c.post("/indexes/toy/search", json={"vectors": [[1.0, 0.0, 0.0, 0.0]] * 5, "k": 10}).status_code == 200


def test_result_bytes_are_bounded(store_root):
    with client(store_root, limits=WorkLimits(max_result_bytes=4096)) as c:
        r = c.post("/indexes/long/search", json={"vectors": [[1.0, 0.0, 0.0, 0.0]] * 3, "k": 10})
        assert r.status_code == 413 and "larger than the limit of 4096 bytes" in error_of(r)
        r = c.post("/indexes/long/search", json={"vector": [1.0, 0.0, 0.0, 0.0], "k": 10})
        assert r.status_code == 200 and len(r.json()["neighbors"]) == 10  # 10 x (203 + 40) bytes fits


def test_bad_work_limits_are_refused():
    for kw in ({"max_results": 0}, {"max_heavy": 0}, {"max_result_bytes": 10}, {"heavy_above": True}):
        with pytest.raises(InputError, match=next(iter(kw))):
            WorkLimits(**kw)


def test_concurrent_heavy_searches_get_429(store_root, monkeypatch):
    gate, inside = threading.Event(), threading.Semaphore(0)
    real = ek.VectorIndex.search

    def slow_search(self, *a, **kw):
        inside.release()
        assert gate.wait(20)
        return real(self, *a, **kw)

    monkeypatch.setattr(ek.VectorIndex, "search", slow_search)
    heavy = {"vectors": [[1.0, 0.0, 0.0, 0.0]] * 20, "k": 100}  # 2000 results > heavy_above=1000
    with ServerThread(create_app(store_root, limits=WorkLimits(max_heavy=2))) as srv:
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(httpx.post(srv.url + "/indexes/toy/search",
                                                                              json=heavy, timeout=30).status_code))
                   for _ in range(2)]
        for t in threads:
            t.start()
        assert inside.acquire(timeout=10) and inside.acquire(timeout=10)  # both heavy searches running
        r = httpx.post(srv.url + "/indexes/toy/search", json=heavy, timeout=10)
        assert r.status_code == 429 and r.headers["retry-after"] == "1" and "retry shortly" in error_of(r)
        gate.set()  # light requests were never held back: one query of k=10 passes while the slots were full
        light = httpx.post(srv.url + "/indexes/toy/search", json={"vector": [1, 0, 0, 0], "k": 10}, timeout=10)
        for t in threads:
            t.join(20)
        assert light.status_code == 200 and statuses == [200, 200]
        assert httpx.post(srv.url + "/indexes/toy/search", json=heavy, timeout=10).status_code == 200  # slots freed


# ----------------------------------------------------------------------------- item 7: connections
def test_half_open_connections_are_closed(store_root):
    with ServerThread(create_app(store_root), head_timeout=0.5, keep_alive=0.5) as srv:
        silent = srv.connect()  # connects, never sends a byte
        partial = srv.connect()
        partial.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        trickle = srv.connect()
        t0 = time.monotonic()
        for b in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ":  # a byte every 0.1 s: slowloris
            try:
                trickle.send(bytes([b]))
            except OSError:
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 3:
                break
        for sock in (silent, partial, trickle):
            _, took = read_until_closed(sock, 3.0)
            sock.close()
        assert time.monotonic() - t0 < 3.5
        kept = srv.connect()  # an idle kept-alive connection is closed too
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, _ = read_until_closed(kept, 3.0)
        assert data.startswith(b"HTTP/1.1 200")
        assert httpx.get(srv.url + "/health", timeout=5).status_code == 200


def test_a_body_that_never_arrives_gets_408(store_root):
    with ServerThread(create_app(store_root, body_timeout=0.5), head_timeout=10) as srv:
        sock = srv.connect()
        sock.sendall(b"POST /indexes/toy/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"vector\": [1,")
        data, took = read_until_closed(sock, 5.0)
        assert data.startswith(b"HTTP/1.1 408") and b'{"error":"the request body did not arrive within 0.5 s"}' in data
        assert took < 4


def test_connection_limit_drops_the_longest_idle(store_root):
    with ServerThread(create_app(store_root), max_connections=20, head_timeout=30) as srv:
        idle = [srv.connect() for _ in range(40)]
        time.sleep(0.3)
        for _ in range(3):
            assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
        deadline, closed = time.monotonic() + 3, set()
        while time.monotonic() < deadline and len(closed) < 20:  # the server sends nothing else: readable = closed
            ready, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.2)
            closed.update(ready)
        assert len(idle) - len(closed) <= 20  # the oldest idle ones were closed to make room
        for s in idle:
            s.close()
    with pytest.raises(InputError, match="max_connections"):
        server_config(None, max_connections=0)


def _low_file_limit():
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    """The real `embedkit serve` with the common default file limit of 1024 and default options."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        if hard != resource.RLIM_INFINITY and hard < 1400:
            pytest.skip("this test opens 1,100 sockets: the file limit is too low")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1400, hard))
    root = tmp_path_factory.mktemp("cli") / "store"
    Store(root).save("toy", ek.Embeddings(["a", "b"], np.eye(2, DIM, dtype=np.float32)).to_index())
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", str(root), "serve", "--port", str(port),
                             "--log-level", "error"], preexec_fn=_low_file_limit,
                            env=dict(os.environ, EMBEDKIT_TOKEN=TOKEN), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"embedkit serve did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(20)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_1100_idle_sockets_do_not_lock_out_clients(cli_server):
    port = cli_server
    socks = []
    try:
        for _ in range(1100):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        t0 = time.monotonic()
        for _ in range(3):
            r = httpx.get(f"http://127.0.0.1:{port}/indexes/toy/neighbors", params={"key": "a", "k": 1}, timeout=5)
            assert r.status_code == 200 and r.json()["neighbors"][0]["key"] == "b"
        assert time.monotonic() - t0 < 5
    finally:
        for s in socks:
            s.close()


def test_cli_refuses_foreign_hosts(cli_server):
    port = cli_server
    r = httpx.get(f"http://127.0.0.1:{port}/indexes", headers={"Host": "rebind.attacker.example"}, timeout=5)
    assert r.status_code == 421 and "--allow-host rebind.attacker.example" in error_of(r)
    assert httpx.get(f"http://localhost:{port}/indexes", timeout=5).status_code == 200


def test_cli_writes_refused_before_the_body(cli_server):
    sock = socket.create_connection(("127.0.0.1", cli_server), timeout=5)
    sock.sendall(b"POST /indexes/toy/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 4000000\r\n\r\n")  # 4 MB announced (under the 8 MiB limit), none sent
    data, took = read_until_closed(sock, 5.0)
    assert data.startswith(b"HTTP/1.1 401") and b"missing or wrong token" in data and took < 4


# ----------------------------------------------------------------------------- item 12: hosts, auth, tokens, keys
@pytest.mark.parametrize("base_url,allowed,status", [
    ("http://127.0.0.1:8000", None, 200),
    ("http://localhost", None, 200),
    ("http://LOCALHOST.:8000", None, 200),
    ("http://[::1]:8000", None, 200),
    ("http://attacker.example", None, 421),
    ("http://127.0.0.1.attacker.example", None, 421),
    ("http://192.168.1.20:8000", None, 421),
    ("http://testserver", None, 421),
    ("http://embed.example.org:8000", ["embed.example.org"], 200),
    ("http://localhost:8000", ["embed.example.org"], 421),
    ("http://anything.example", ["*"], 200),
])
def test_host_allow_list(store_root, base_url, allowed, status):
    kw = {} if allowed is None else {"allowed_hosts": allowed}
    with client(store_root, base_url=base_url, **kw) as c:
        for path in ("/indexes", "/indexes/toy/neighbors?key=k000", "/"):
            r = c.get(path)
            assert r.status_code == status, (path, r.text)
        if status == 421:
            assert "DNS rebinding" in error_of(r)


def test_host_parsing():
    assert host_of("Example.ORG.:8080") == "example.org" and host_of("[::1]:80") == "::1"
    assert host_of("127.0.0.1") == "127.0.0.1" and host_of("[0:0:0:0:0:0:0:1]") == "::1"
    with pytest.raises(InputError, match="allowed_hosts"):
        create_app(None, allowed_hosts="localhost")
    with pytest.raises(InputError, match="allowed_hosts"):
        create_app(None, allowed_hosts=["http://x.org/"])


def test_unauthorised_write_is_refused_before_its_body_is_parsed(store_root):
    with client(store_root) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = c.post("/indexes/toy/items", content=b'{"items": [ not json', headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "token" in error_of(r)
    with client(store_root, token=None) as c:
        r = c.post("/indexes/toy/remove", content=b"\x00" * 5000)
        assert r.status_code == 403 and "--token" in error_of(r)
    with client(store_root) as c:
        r = c.post("/indexes/toy/items", content=b'{"items": [ not json',
                   headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 400 and "malformed JSON" in error_of(r)  # authorised: the body is parsed
        assert c.post("/indexes/toy/search", json={"vector": [1, 0, 0, 0]}).status_code == 200  # reads: no token


def test_write_refused_before_the_body_over_real_sockets(store_root):
    with ServerThread(create_app(store_root, token=TOKEN)) as srv:
        for auth in (b"", b"Authorization: Bearer nope\r\n"):
            sock = srv.connect()
            sock.sendall(b"POST /indexes/toy/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         + auth + b"Content-Length: 4000000\r\n\r\n" + b"{" * 1000)
            data, took = read_until_closed(sock, 5.0)
            assert data.startswith(b"HTTP/1.1 401") and b"connection: close" in data.lower() and took < 4


@pytest.mark.parametrize("token", ["", "pässword", "two words", "tab\there", "new\nline", "ü" * 10])
def test_unusable_tokens_are_refused_at_start(store_root, token):
    with pytest.raises(InputError, match="token"):
        create_app(store_root, token=token)


def test_cli_refuses_unusable_tokens(store_root, capsys, monkeypatch):
    monkeypatch.delenv("EMBEDKIT_TOKEN", raising=False)
    for argv, env, words in ((["--token", "pässword"], None, "HTTP header"), (["--token", ""], None, "--token is empty"),
                             ([], "", "EMBEDKIT_TOKEN is set but empty"), ([], "ça", "HTTP header")):
        if env is None:
            monkeypatch.delenv("EMBEDKIT_TOKEN", raising=False)
        else:
            monkeypatch.setenv("EMBEDKIT_TOKEN", env)
        assert main(["--store", str(store_root), "serve", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err


def test_cli_server_options_reach_uvicorn(store_root, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.__setitem__("config", self.config))
    # nothing is bound here (uvicorn's run is replaced): skip the busy-port check, which would refuse
    # 10.1.2.3 (not this machine's) and port 8000 when something else holds it
    monkeypatch.setattr("embedkit.cli.serve.check_port_free", lambda host, port: None)
    monkeypatch.delenv("EMBEDKIT_TOKEN", raising=False)
    assert main(["--store", str(store_root), "serve", "--allow-host", "embed.example.org", "--max-connections", "50",
                 "--header-timeout", "2", "--max-results", "500"]) == 0
    app = seen["config"].app
    with TestClient(app, base_url="http://embed.example.org") as c:
        assert c.get("/indexes").status_code == 200
        r = c.post("/indexes/toy/search", json={"vectors": [[1, 0, 0, 0]] * 6, "k": 100})
        assert r.status_code == 413 and "limit is 500" in error_of(r)
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/indexes").status_code == 421  # an explicit list replaces the default
    assert seen["config"].timeout_keep_alive == 5 and not seen["config"].proxy_headers
    assert main(["--store", str(store_root), "serve", "--host", "10.1.2.3"]) == 0
    with TestClient(seen["config"].app, base_url="http://10.1.2.3:8000") as c:
        assert c.get("/indexes").status_code == 200  # the bound address is allowed by default


KEYS = ["line\nbreak", "a\n", "a", "\nlead", "tab\tkey", "cr\rkey", "esc\x1bkey", "del\x7fkey", "nel\x85key",
        "ls\u2028key", "slash/key", "/", "pct%41", "q?x#y", "sp ace ", "é-ü", "dots/../up"]


def test_keys_with_control_characters_read_back(store_root):
    """One rule: every key a write accepts reads back exactly through /items/{key} (percent-encoded).
    Over a real server: Starlette's TestClient decodes a path twice (a key holding '%41' would read 'A')."""
    with ServerThread(create_app(store_root, token=TOKEN)) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        items = [{"key": k, "vector": [1.0, float(i), 0.5, 0.0]} for i, k in enumerate(KEYS)]
        assert c.post("/indexes/toy/items", json={"items": items}, headers=AUTH).status_code == 200
        for i, k in enumerate(KEYS):
            r = c.get(f"/indexes/toy/items/{quote(k, safe='')}")
            assert r.status_code == 200, (k, r.text)
            assert r.json()["key"] == k and r.json()["vector"] == [1.0, float(i), 0.5, 0.0], k
            r = c.get("/indexes/toy/neighbors", params={"key": k, "k": 1})
            assert r.status_code == 200, (k, r.text)
        r = c.delete(f"/indexes/toy/items/{quote('line' + chr(10) + 'break', safe='')}", headers=AUTH)
        assert r.status_code == 200 and r.json()["removed"] == 1
        assert c.get("/indexes/toy/items/line%0Abreak").status_code == 404
        assert c.get("/indexes/toy/items/a%0A").json()["key"] == "a\n"  # not "a"
        r = c.post("/indexes/toy/items", content=rb'{"items": [{"key": "bad\ud800", "vector": [1, 0, 0, 0]}]}',
                   headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 422 and "items.0.key" in error_of(r)  # no UTF-8 form: refused at the door
