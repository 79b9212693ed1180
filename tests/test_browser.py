"""End to end: the real `embedkit serve` process driven by headless Chromium through the web page.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) at /usr/bin/chromium and the
``playwright`` Python package (test extra). Playwright only drives the installed browser; it never
downloads one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

CHROMIUM = os.environ.get("EMBEDKIT_CHROMIUM", "/usr/bin/chromium")
if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(f"headless browser test skipped: Chromium not found at {CHROMIUM} "
                "(install it with 'apt-get install -y chromium')", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' package is not installed "
                               "(pip install -e '.[test]')")
httpx = pytest.importorskip("httpx")

import embedkit as ek  # noqa: E402
from embedkit.store import Store  # noqa: E402
from embedkit.trainers.mf import MatrixFactorization  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FRUITS = ["apple", "apricot", "banana", "cherry", "grape"]
ANIMALS = ["cat", "dog", "horse", "mouse", "tiger"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "store"
    store = Store(root)
    rng = np.random.default_rng(0)
    vecs = np.repeat(np.eye(6, dtype=np.float32)[:2], 5, axis=0) + 0.05 * rng.standard_normal((10, 6)).astype(np.float32)
    store.save("words", ek.Embeddings(FRUITS + ANIMALS, vecs).to_index())
    users, items = [], []
    for u in range(20):
        for i in rng.choice(10, 4, replace=False):
            users.append(f"user{u:02d}")
            items.append(f"{'fruit' if u % 2 else 'tool'}-{i}")
    mf = MatrixFactorization(method="als", dim=8, epochs=5, seed=0)
    mf.fit(ek.Interactions.from_arrays(users, items), show_progress=False)
    mf.to_store("shop", store)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", str(root), "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
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
    yield url, mf
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pg = browser.new_page()
        pg.set_default_timeout(15000)
        yield pg
        browser.close()


def test_neighbours_of_a_typed_key(server, page):
    url, _ = server
    page.goto(url + "/")
    page.wait_for_selector("#index-select option[value='words']", state="attached")
    page.select_option("#index-select", "words")
    page.wait_for_function("document.getElementById('index-info').textContent.includes('10 items')")
    assert page.is_hidden("#recommend-panel")  # "words" is not a recommender
    # autocomplete: typing a prefix offers the matching keys
    page.fill("#key-input", "ap")
    page.wait_for_function("document.querySelectorAll('#key-options option').length === 2")
    offered = page.eval_on_selector_all("#key-options option", "els => els.map(e => e.value)")
    assert offered == ["apple", "apricot"]
    page.fill("#key-input", "apple")
    page.click("#key-go")
    page.wait_for_selector("#neighbors tbody tr")
    rows = page.eval_on_selector_all("#neighbors tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.innerText.trim()))")
    assert len(rows) == 9  # k=10, the key itself excluded
    shown = [r[1] for r in rows]
    assert set(shown[:4]) == set(FRUITS) - {"apple"}  # the other fruits come first
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True) and 0.9 < scores[0] <= 1.0001
    assert "9 neighbours of" in page.inner_text("#message")
    # clicking a neighbour looks up its own neighbours
    page.click("#neighbors tbody tr:first-child td.key a")
    page.wait_for_function("document.getElementById('message').textContent.includes('neighbours of “' + "
                           f"'{shown[0]}')")
    assert page.input_value("#key-input") == shown[0]


def test_unknown_key_shows_the_error(server, page):
    url, _ = server
    page.goto(url + "/")
    page.wait_for_selector("#index-select option[value='words']", state="attached")
    page.select_option("#index-select", "words")
    page.fill("#key-input", "unicorn")
    page.click("#key-go")
    page.wait_for_selector("#message.error")
    assert "key 'unicorn' is not in index 'words'" in page.inner_text("#message")
    assert page.is_hidden("#neighbors")


def test_recommendations_next_to_history(server, page):
    url, mf = server
    page.goto(url + "/")
    page.wait_for_selector("#index-select option[value='shop']", state="attached")
    page.select_option("#index-select", "shop")
    page.wait_for_selector("#recommend-panel", state="visible")
    page.fill("#user-input", "user0")
    page.wait_for_function("document.querySelectorAll('#user-options option').length > 0")
    page.fill("#user-input", "user03")
    page.select_option("#k-select", "5")
    page.click("#user-go")
    page.wait_for_selector("#recommendations tbody tr")
    recs = page.eval_on_selector_all("#recommendations tbody td.key", "tds => tds.map(td => td.innerText.trim())")
    history = page.eval_on_selector_all("#history li .key", "els => els.map(e => e.innerText.trim())")
    assert recs == [k for k, _ in mf.recommend("user03", k=5)]
    assert len(history) == 4 and not set(history) & set(recs)
    assert all(h.startswith("fruit-") for h in history)  # user03 is in the fruit group
