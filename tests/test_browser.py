"""End to end: the real `embedkit serve` process driven by headless Chromium through the web page.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) at /usr/bin/chromium and the
``playwright`` Python package (test extra). Playwright only drives the installed browser; it never
downloads one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

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
COLOURS = ["red", "green", "blue"]
ROYALS = {  # royalty, gender (+ male), person, fruit
    "king": [1.0, 1.0, 0.3, 0.0], "queen": [1.0, -1.0, 0.3, 0.0], "man": [0.0, 1.0, 1.0, 0.0],
    "woman": [0.0, -1.0, 1.0, 0.0], "prince": [0.8, 1.0, 0.5, 0.1], "apple": [0.0, 0.0, 0.1, 1.0],
    "pear": [0.1, 0.1, 0.0, 1.0], "child": [0.1, 0.0, 1.0, 0.1],
}


def catalog_payload(i: int) -> dict:
    return {"colour": COLOURS[i % 3], "price": i, "in_stock": i % 2 == 0, "tags": [f"t{i % 4}", "all"]}


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
    catalog = ek.VectorIndex(6, metric="cosine")
    catalog.add([f"item-{i:02d}" for i in range(30)], rng.standard_normal((30, 6)).astype(np.float32),
                payload=[catalog_payload(i) for i in range(30)])
    store.save("catalog", catalog)
    royals = ek.VectorIndex(4, metric="cosine")
    royals.add(list(ROYALS), np.array(list(ROYALS.values()), dtype=np.float32))
    store.save("royals", royals)
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
    yield SimpleNamespace(url=url, mf=mf, store=store)
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
    url = server.url
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
    page.goto(server.url + "/")
    page.wait_for_selector("#index-select option[value='words']", state="attached")
    page.select_option("#index-select", "words")
    page.fill("#key-input", "unicorn")
    page.click("#key-go")
    page.wait_for_selector("#message.error")
    assert "key 'unicorn' is not in index 'words'" in page.inner_text("#message")
    assert page.is_hidden("#neighbors")


def test_recommendations_next_to_history(server, page):
    url, mf = server.url, server.mf
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


def choose(page, url, name):
    page.goto(url + "/")
    page.wait_for_selector(f"#index-select option[value='{name}']", state="attached")
    page.select_option("#index-select", name)
    page.wait_for_function(f"document.getElementById('index-info').textContent.includes('items') && "
                           f"document.getElementById('index-select').value === '{name}'")


def table_rows(page, table):
    """(key, {field: shown text}) of each row of a results table."""
    return page.eval_on_selector_all(
        f"#{table} tbody tr",
        "trs => trs.map(tr => [tr.querySelector('td.key').innerText.trim(), Object.fromEntries("
        "[...tr.querySelectorAll('td.payload .field')].map(f => [f.dataset.field, f.querySelector('.val').innerText]))])")


def test_filter_box_restricts_neighbours_and_shows_payloads(server, page):
    choose(page, server.url, "catalog")
    page.wait_for_function("document.getElementById('payload-fields').textContent.includes('colour (str)')")
    flt = {"colour": "red", "price": {"$lt": 25}}
    page.fill("#filter-input", json.dumps(flt))
    page.fill("#key-input", "item-01")
    page.click("#key-go")
    page.wait_for_function("document.getElementById('message').textContent.includes('matching the filter')")
    rows = table_rows(page, "neighbors")
    want = server.store.load("catalog").search_keys(["item-01"], k=10, filter=flt)
    assert [k for k, _ in rows] == list(want.keys[0]) and len(rows) == 9  # red items below 25: 0, 3, ..., 24
    for key, shown in rows:  # the payload fields are on the page, beside each result
        i = int(key.split("-")[1])
        assert shown["colour"] == "red" and int(shown["price"]) < 25 and shown == {
            "colour": "red", "price": str(i), "in_stock": str(i % 2 == 0).lower(), "tags": f"t{i % 4}, all"}
    assert page.is_visible("#neighbors th.payload-head")
    # a filter that is not JSON is refused on the page, one that the index refuses shows the server's line
    page.fill("#filter-input", "{colour: red}")
    page.click("#key-go")
    page.wait_for_selector("#message.error")
    assert "Filter: not valid JSON" in page.inner_text("#message") and page.is_hidden("#neighbors")
    page.fill("#filter-input", '{"price": {"$near": 3}}')
    page.click("#key-go")
    page.wait_for_function("document.getElementById('message').textContent.includes('$near')")
    assert "filter" in page.inner_text("#message")
    page.click("#filter-clear")
    page.click("#key-go")
    page.wait_for_function("document.getElementById('message').textContent.includes('10 neighbours of')")


def test_examples_query_king_minus_man_plus_woman(server, page):
    choose(page, server.url, "royals")
    page.fill("#filter-input", "")
    page.fill("#positive-input", "king, woman")
    page.fill("#negative-input", "man")
    page.click("#examples-go")
    page.wait_for_selector("#examples tbody tr")
    keys = [k for k, _ in table_rows(page, "examples")]
    assert keys[0] == "queen" and not {"king", "woman", "man"} & set(keys)
    assert keys == list(server.store.load("royals").search_examples(positive=["king", "woman"], negative=["man"],
                                                                   k=10).keys[0])
    assert "items like king + woman − man" in page.inner_text("#message")
    assert page.is_hidden("#examples th.payload-head")  # no payloads in this index
    page.select_option("#method-select", "mul")
    page.click("#examples-go")
    page.wait_for_function("document.querySelector('#examples tbody td.key') && "
                           "document.querySelector('#examples tbody td.key').innerText.trim() === 'queen'")
    page.fill("#positive-input", "unicorn")
    page.click("#examples-go")
    page.wait_for_selector("#message.error")
    assert "key 'unicorn' is not in index 'royals'" in page.inner_text("#message")


def test_examples_with_a_filter_show_payloads(server, page):
    choose(page, server.url, "catalog")
    flt = {"in_stock": True, "tags": {"$in": ["t0", "t2"]}}
    page.fill("#filter-input", json.dumps(flt))
    page.fill("#positive-input", "item-01, item-05")
    page.fill("#negative-input", "item-02")
    page.select_option("#k-select", "5")
    page.click("#examples-go")
    page.wait_for_function("document.getElementById('message').textContent.includes('matching the filter')")
    rows = table_rows(page, "examples")
    want = server.store.load("catalog").search_examples(positive=["item-01", "item-05"], negative=["item-02"], k=5,
                                                        filter=flt)
    assert [k for k, _ in rows] == list(want.keys[0]) and len(rows) == 5
    assert all(shown["in_stock"] == "true" and shown["tags"].split(", ")[0] in ("t0", "t2") for _, shown in rows)


def test_api_docs_render_offline(server, page):
    """/docs shows the endpoints with nothing fetched from outside the server; /redoc leads there."""
    external = []

    def only_local(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto(server.url + "/docs")
        page.wait_for_selector(".opblock-summary-path")
        paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.innerText.trim())")
        assert {"/indexes/{name}/search", "/indexes/{name}/examples", "/indexes/{name}/neighbors"} <= set(paths)
        assert "Unable to render this definition" not in page.inner_text("body")
        page.click("#operations-read-search_indexes__name__search_post .opblock-summary")
        page.wait_for_selector("#operations-read-search_indexes__name__search_post .opblock-body")
        assert "include_payload" in page.inner_text("#operations-read-search_indexes__name__search_post")
        page.goto(server.url + "/redoc")
        page.wait_for_selector(".opblock-summary-path")
        assert page.url.endswith("/docs")
    finally:
        page.unroute("**/*")
    assert external == []


def test_filter_box_applies_to_recommendations(server, page):
    mf = server.mf
    top = [k for k, _ in mf.recommend("user03", k=5)]
    flt = {"$key": {"$nin": top[:2]}}
    choose(page, server.url, "shop")
    page.wait_for_selector("#recommend-panel", state="visible")
    page.fill("#filter-input", json.dumps(flt))
    page.fill("#user-input", "user03")
    page.select_option("#k-select", "5")
    page.click("#user-go")
    page.wait_for_function("document.getElementById('message').textContent.includes('recommendations for')")
    recs = page.eval_on_selector_all("#recommendations tbody td.key", "tds => tds.map(td => td.innerText.trim())")
    assert recs == [k for k, _ in mf.recommend("user03", k=5, filter=flt)] and not set(top[:2]) & set(recs)
    page.fill("#filter-input", "")


def test_map_shows_points_labels_on_hover_and_the_querys_neighbours(server, page):
    choose(page, server.url, "words")
    page.wait_for_function("document.querySelectorAll('#map circle.pt').length === 10")
    axes = page.eval_on_selector_all("#map text.axis", "els => els.map(e => e.textContent)")
    assert len(axes) == 2 and all("% of variance" in a for a in axes)
    assert "all 10 items" in page.inner_text("#map-info")
    # points are spread over the map, not piled up: fruits and animals lie apart on PC1
    xs = dict(page.eval_on_selector_all("#map circle.pt", "cs => cs.map(c => [c.dataset.key, +c.getAttribute('cx')])"))
    fruit, animal = [np.mean([xs[k] for k in group]) for group in (FRUITS, ANIMALS)]
    assert abs(fruit - animal) > 200  # of a 640-wide map
    # hovering a point shows its key beside it
    page.hover("#map circle.pt[data-key='tiger']")
    page.wait_for_selector("#map-label", state="visible")
    assert page.inner_text("#map-label") == "tiger"
    assert page.eval_on_selector("#map circle.pt[data-key='tiger'] title", "t => t.textContent") == "tiger"
    # a query rings its key and fills its neighbours, all labelled on the map
    page.fill("#key-input", "apple")
    page.select_option("#k-select", "5")
    page.click("#key-go")
    page.wait_for_selector("#map circle.pt.query")
    page.wait_for_function("document.querySelectorAll('#map circle.pt.hit').length === 5")
    query = page.eval_on_selector_all("#map circle.pt.query", "cs => cs.map(c => c.dataset.key)")
    hits = page.eval_on_selector_all("#map circle.pt.hit", "cs => cs.map(c => c.dataset.key)")
    shown = [k for k, _ in table_rows(page, "neighbors")]
    assert query == ["apple"] and sorted(hits) == sorted(shown)
    labels = page.eval_on_selector_all("#map text.lbl", "ts => ts.map(t => t.textContent)")
    assert sorted(labels) == sorted(shown + ["apple"])
    fill = page.eval_on_selector("#map circle.pt.hit", "c => getComputedStyle(c).fill")
    plain = page.eval_on_selector("#map circle.pt:not(.hit):not(.query)", "c => getComputedStyle(c).fill")
    assert fill != plain  # the neighbours stand out
    # clicking a point asks for its neighbours
    page.click("#map circle.pt[data-key='tiger']", force=True)
    page.wait_for_function("document.getElementById('message').textContent.includes('neighbours of “tiger')")
    page.wait_for_function("document.querySelector('#map circle.pt.query') && "
                           "document.querySelector('#map circle.pt.query').dataset.key === 'tiger'")
    # an error clears the marks
    page.fill("#key-input", "unicorn")
    page.click("#key-go")
    page.wait_for_selector("#message.error")
    page.wait_for_function("document.querySelectorAll('#map circle.pt.hit, #map circle.pt.query').length === 0")


def test_score_bars_are_on_an_absolute_scale(server, page):
    choose(page, server.url, "words")
    page.select_option("#k-select", "10")
    page.fill("#key-input", "apple")
    page.click("#key-go")
    page.wait_for_selector("#neighbors tbody tr")
    rows = page.eval_on_selector_all(
        "#neighbors tbody tr",
        "trs => trs.map(tr => [+tr.querySelector('.value').textContent, parseFloat(tr.querySelector('.bar').style.width)])")
    for score, width in rows:  # cosine similarity: the bar is |similarity| of the full track
        assert width == pytest.approx(100 * min(abs(score), 1), abs=0.1)
    assert rows[-1][1] < 30  # the animals are far from apple: short bars, not rescaled to the top result


def test_history_is_cleared_when_a_recommendation_fails(server, page):
    choose(page, server.url, "shop")
    page.wait_for_selector("#recommend-panel", state="visible")
    page.fill("#filter-input", "")
    page.fill("#user-input", "user03")
    page.click("#user-go")
    page.wait_for_selector("#history li")
    page.fill("#user-input", "nobody")
    page.click("#user-go")
    page.wait_for_selector("#message.error")
    assert "nobody" in page.inner_text("#message")
    assert page.eval_on_selector_all("#history li", "els => els.length") == 0 and page.is_hidden("#recommendations")


def test_favicon_is_served_locally(server, page):
    page.goto(server.url + "/")
    href = page.eval_on_selector("link[rel=icon]", "l => l.href")
    assert href.startswith(server.url)
    r = httpx.get(href)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg") and b"<svg" in r.content


@pytest.mark.parametrize("index", ["catalog", "shop"])
def test_phone_width_layout_has_no_horizontal_overflow(server, page, index, tmp_path):
    context = page.context.browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=2)
    phone = context.new_page()
    phone.set_default_timeout(15000)
    try:
        choose(phone, server.url, index)
        phone.wait_for_selector("#map circle.pt")
        if index == "catalog":
            phone.fill("#filter-input", json.dumps({"colour": "red"}))
            phone.fill("#key-input", "item-03")
            phone.click("#key-go")
            phone.wait_for_selector("#neighbors tbody tr")
        else:
            phone.fill("#user-input", "user03")
            phone.click("#user-go")
            phone.wait_for_selector("#recommendations tbody tr")
        width = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px viewport"
        boxes = phone.eval_on_selector_all("section, table.results:not([hidden]), #map",
                                           "els => els.map(e => e.getBoundingClientRect().right)")
        assert max(boxes) <= 375
        if os.environ.get("EMBEDKIT_SCREENSHOTS"):
            phone.screenshot(path=os.path.join(os.environ["EMBEDKIT_SCREENSHOTS"], f"phone-{index}.png"), full_page=True)
    finally:
        context.close()
