// embedkit explorer: pick an index, look up neighbours of a key, items like some examples and
// unlike others, recommendations for a user; an optional payload filter (JSON) applies to all.
// Plain browser JavaScript, no build step. Text from the server is inserted with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { index: null, info: null, fields: {} };

async function api(path, body) {
  const init = { headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function say(text, isError) {
  const el = $("message");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

function enc(s) { return encodeURIComponent(s); }

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function fillDatalist(id, values) {
  const list = $(id);
  list.replaceChildren(...values.map((v) => { const o = document.createElement("option"); o.value = v; return o; }));
}

// The filter box: null when empty, else the parsed JSON object (an Error says what is wrong).
function currentFilter() {
  const box = $("filter-input");
  const text = box.value.trim();
  box.classList.remove("bad");
  if (!text) return null;
  let f;
  try { f = JSON.parse(text); } catch (e) {
    box.classList.add("bad");
    throw new Error(`Filter: not valid JSON (${e.message}); e.g. {"colour": "red"}`);
  }
  if (typeof f !== "object" || f === null || Array.isArray(f)) {
    box.classList.add("bad");
    throw new Error('Filter: must be a JSON object such as {"colour": "red"}');
  }
  return f;
}

function hasPayload() { return Object.keys(state.fields).length > 0; }

function payloadCell(payload) {
  const td = document.createElement("td"); td.className = "payload";
  for (const [name, value] of Object.entries(payload || {})) {
    const span = document.createElement("span"); span.className = "field"; span.dataset.field = name;
    const n = document.createElement("span"); n.className = "name"; n.textContent = name + ": ";
    const v = document.createElement("span"); v.className = "val";
    v.textContent = Array.isArray(value) ? value.join(", ") : String(value);
    span.append(n, v); td.appendChild(span);
  }
  return td;
}

// Bar length on an absolute scale, so bars compare across queries: "cosine" 0..1 (a negative
// similarity draws a red bar of its size), "distance" 1/(1 + d); unbounded scores ("score":
// inner products, model scores) from 0 to the largest |score| shown, as the bar's title says.
function barOf(score, scale, maxAbs) {
  let frac, title;
  if (scale === "cosine") { frac = Math.abs(score); title = "cosine similarity, bar 0 to 1"; }
  else if (scale === "distance") { frac = 1 / (1 + Math.max(score, 0)); title = "distance d, bar 1/(1 + d)"; }
  else { frac = maxAbs > 0 ? Math.abs(score) / maxAbs : 0; title = "score, bar 0 to the largest |score| shown"; }
  const track = document.createElement("span"); track.className = "track"; track.title = title;
  const bar = document.createElement("span"); bar.className = score < 0 ? "bar neg" : "bar";
  bar.style.width = (100 * Math.min(Math.max(frac, 0), 1)).toFixed(1) + "%";
  track.appendChild(bar);
  return track;
}

function fillTable(table, rows, scale, onClick) {
  const body = table.querySelector("tbody");
  const withPayload = rows.some((r) => r.payload !== undefined);
  table.classList.toggle("no-payload", !withPayload);
  const maxAbs = Math.max(0, ...rows.map((r) => Math.abs(r.score)));
  body.replaceChildren(...rows.map((r, i) => {
    const tr = document.createElement("tr");
    const rank = document.createElement("td"); rank.className = "rank"; rank.textContent = String(i + 1);
    const key = document.createElement("td"); key.className = "key";
    if (onClick) {
      const a = document.createElement("a"); a.textContent = r.key; a.title = "neighbours of " + r.key;
      a.addEventListener("click", () => onClick(r.key)); key.appendChild(a);
    } else { key.textContent = r.key; }
    const score = document.createElement("td"); score.className = "score";
    const val = document.createElement("span"); val.className = "value"; val.textContent = r.score.toFixed(4);
    score.append(barOf(r.score, scale, maxAbs), val);
    tr.append(rank, key, score);
    if (withPayload) tr.appendChild(payloadCell(r.payload));
    return tr;
  }));
  table.hidden = rows.length === 0;
}

// The scale of an index's search scores (see barOf).
function scaleOf(scoreKind) {
  if (scoreKind === "distance") return "distance";
  return state.info && state.info.metric === "cosine" ? "cosine" : "score";
}

// ------------------------------------------------------------------ the map (PCA of a sample)
const SVG = "http://www.w3.org/2000/svg";
const MAP_N = 1000;
const mapState = { index: null, points: new Map(), marks: null };

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

async function loadMap(name, include) {
  let query = `n=${MAP_N}`;
  if (include && include.length) query += `&include=${enc(JSON.stringify(include))}`;
  const data = await api(`/indexes/${enc(name)}/map?${query}`);
  if (state.index !== name) return;
  drawMap(name, data);
}

function drawMap(name, data) {
  const svg = $("map");
  const W = 640, H = 400, pad = 28;
  const xs = data.points.map((p) => p[1]), ys = data.points.map((p) => p[2]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = x1 > x0 ? (W - 2 * pad) / (x1 - x0) : 1, sy = y1 > y0 ? (H - 2 * pad) / (y1 - y0) : 1;
  const px = (x) => (x1 > x0 ? pad + (x - x0) * sx : W / 2), py = (y) => (y1 > y0 ? H - pad - (y - y0) * sy : H / 2);
  const [e1, e2] = data.explained.map((e) => Math.round(100 * e));
  const axes = [svgEl("text", { class: "axis", x: W - 6, y: H - 8, "text-anchor": "end" }),
                svgEl("text", { class: "axis", x: 8, y: 14 })];
  axes[0].textContent = `PC1 → ${e1}% of variance`;
  axes[1].textContent = `PC2 ↑ ${e2}% of variance`;
  const points = new Map();
  const dots = data.points.map(([key, x, y]) => {
    const c = svgEl("circle", { class: "pt", cx: px(x).toFixed(1), cy: py(y).toFixed(1), r: 4 });
    c.dataset.key = key;
    const t = svgEl("title"); t.textContent = key; c.appendChild(t);
    points.set(key, c);
    return c;
  });
  svg.replaceChildren(...axes, ...dots, svgEl("g", { id: "map-labels" }));
  mapState.index = name; mapState.points = points;
  const shown = data.sampled < data.count ? `${data.sampled} of ${data.count} items (a fixed sample)` : `all ${data.count} items`;
  $("map-info").textContent = `PCA of ${shown}${data.metric === "cosine" ? ", by direction" : ""}; ` +
    "hover a point for its key, click it for its neighbours. The last query's key is ringed, its results are orange.";
  if (mapState.marks) markMap(mapState.marks.query, mapState.marks.hits, false);
}

function mapHover(e) {
  const c = e.target.closest ? e.target.closest("circle.pt") : null;
  const label = $("map-label");
  $("map").querySelectorAll("circle.pt.hover").forEach((x) => x.classList.remove("hover"));
  if (!c) { label.hidden = true; return; }
  c.classList.add("hover");
  const box = $("map-wrap").getBoundingClientRect(), r = c.getBoundingClientRect();
  label.textContent = c.dataset.key;
  label.style.left = (r.left + r.width / 2 - box.left) + "px";
  label.style.top = (r.top - box.top) + "px";
  label.hidden = false;
}

// Ring the query keys, fill the result keys and label both; keys the sample left out are fetched
// onto the same axes first (they are never sampled away).
async function markMap(query, hits, fetchMissing = true) {
  mapState.marks = { query, hits };
  const name = state.index;
  if (mapState.index !== name) return;
  const wanted = [...query, ...hits];
  if (fetchMissing && wanted.some((k) => !mapState.points.has(k))) {
    try { await loadMap(name, wanted); return; }  // drawMap marks them
    catch (e) { /* e.g. a key removed since: mark the keys the map has */ }
  }
  const labels = $("map-labels");
  $("map").querySelectorAll("circle.pt.hit, circle.pt.query").forEach((c) => c.classList.remove("hit", "query"));
  const texts = [];
  for (const [keys, cls] of [[hits, "hit"], [query, "query"]]) {
    for (const k of keys) {
      const c = mapState.points.get(k);
      if (!c) continue;
      c.classList.add(cls);
      c.parentNode.insertBefore(c, labels);  // drawn above the other points
      const cx = +c.getAttribute("cx"), right = cx > 480;  // labels on the right half's edge point left
      const t = svgEl("text", { class: "lbl " + cls, x: (cx + (right ? -6 : 6)).toFixed(1),
                                y: (+c.getAttribute("cy") - 6).toFixed(1), "text-anchor": right ? "end" : "start" });
      t.textContent = k; texts.push(t);
    }
  }
  labels.replaceChildren(...texts);
}

function clearMapMarks() { markMap([], [], false); }

async function loadIndexes() {
  const data = await api("/indexes");
  const sel = $("index-select");
  sel.replaceChildren(...data.indexes.map((ix) => {
    const o = document.createElement("option");
    o.value = ix.name;
    o.textContent = ix.error ? `${ix.name} (damaged)` : `${ix.name} (${ix.count} items${ix.recommender ? ", recommender" : ""})`;
    return o;
  }));
  if (!data.indexes.length) { say("The store holds no index yet: train one, e.g. 'embedkit demo'.", true); return; }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("index");
  if (wanted && data.indexes.some((ix) => ix.name === wanted)) sel.value = wanted;
  await selectIndex(sel.value);
}

async function selectIndex(name) {
  state.index = name;
  say("");
  $("neighbors").hidden = true; $("recommendations").hidden = true; $("examples").hidden = true;
  $("history").replaceChildren();
  fillDatalist("key-options", []); fillDatalist("user-options", []);
  try {
    const info = await api(`/indexes/${enc(name)}`);
    if (state.index !== name) return;  // the user picked another index meanwhile
    state.info = info;
    const trainer = info.trainer ? `, trained by ${info.trainer}` : "";
    $("index-info").textContent = `${info.count} items, dim ${info.dim}, ${info.metric} (${info.kind})${trainer}` +
      (info.recommender ? `, ${info.users} users` : "");
    $("score-head").textContent = { cosine: "cosine similarity", ip: "inner product", l2: "distance" }[info.metric] || info.score;
    $("recommend-panel").hidden = !info.recommender;
    state.fields = info.payload_fields || {};
    const fields = Object.entries(state.fields);
    $("payload-fields").textContent = fields.length
      ? "Payload fields: " + fields.map(([f, t]) => `${f} (${t})`).join(", ")
      : "No payload fields in this index: filters can use \"$key\" only.";
    completeKeys($("key-input").value);
    if (info.recommender) completeUsers($("user-input").value);
    mapState.marks = null;
    loadMap(name).catch((e) => { if (state.index === name) $("map-info").textContent = "No map: " + e.message; });
  } catch (e) { if (state.index === name) say(e.message, true); }
}

async function completeKeys(prefix) {
  const name = state.index;
  if (!name) return;
  try {
    const data = await api(`/indexes/${enc(name)}/keys?prefix=${enc(prefix)}&limit=20`);
    if (state.index !== name || $("key-input").value !== prefix) return;  // a stale answer
    fillDatalist("key-options", data.keys);
  } catch (e) { /* autocomplete is best effort */ }
}

async function completeUsers(prefix) {
  const name = state.index;
  if (!name) return;
  try {
    const data = await api(`/indexes/${enc(name)}/users?prefix=${enc(prefix)}&limit=20`);
    if (state.index !== name || $("user-input").value !== prefix) return;
    fillDatalist("user-options", data.users);
  } catch (e) { /* best effort */ }
}

async function showNeighbors(key) {
  key = key.trim();
  if (!key) { say("Type a key first.", true); return; }
  $("key-input").value = key;
  const k = $("k-select").value;
  const name = state.index;
  try {
    const filter = currentFilter();
    let query = `key=${enc(key)}&k=${k}`;
    if (filter) query += `&filter=${enc(JSON.stringify(filter))}`;
    if (hasPayload()) query += "&include_payload=true";
    const data = await api(`/indexes/${enc(name)}/neighbors?${query}`);
    if (state.index !== name) return;
    fillTable($("neighbors"), data.neighbors, scaleOf(data.score), showNeighbors);
    markMap([key], data.neighbors.map((r) => r.key));
    say(`${data.neighbors.length} neighbours of “${key}” in ${state.index}${filter ? " matching the filter" : ""}`);
    history.replaceState(null, "", `#index=${enc(state.index)}&key=${enc(key)}`);
  } catch (e) { $("neighbors").hidden = true; clearMapMarks(); say(e.message, true); }
}

async function showRecommendations(user) {
  user = user.trim();
  if (!user) { say("Type a user first.", true); return; }
  const exclude = $("exclude-seen").checked;
  const name = state.index;
  try {
    const filter = currentFilter();
    let query = `user=${enc(user)}&k=${$("k-select").value}&exclude_seen=${exclude}`;
    if (filter) query += `&filter=${enc(JSON.stringify(filter))}`;
    if (hasPayload()) query += "&include_payload=true";
    const data = await api(`/indexes/${enc(name)}/recommend?${query}`);
    if (state.index !== name) return;
    fillTable($("recommendations"), data.recommendations, "score", null);
    const seen = new Set(data.history.map((h) => h.key));
    $("history").replaceChildren(...data.history.map((h) => {
      const li = document.createElement("li");
      const key = document.createElement("span"); key.className = "key"; key.textContent = h.key;
      const val = document.createElement("span"); val.className = "muted"; val.textContent = ` ${h.value}`;
      li.append(key, val); return li;
    }));
    $("recommendations").querySelectorAll("td.key").forEach((td) => { if (seen.has(td.textContent)) td.classList.add("seen"); });
    markMap(data.history.map((h) => h.key).slice(0, 20), data.recommendations.map((r) => r.key));
    say(`${data.recommendations.length} recommendations for “${user}” (${data.history.length} items in their history)`);
  } catch (e) {
    // nothing of an earlier user stays on screen beside an error
    $("recommendations").hidden = true; $("history").replaceChildren(); clearMapMarks(); say(e.message, true);
  }
}

function keyList(text) { return text.split(",").map((s) => s.trim()).filter(Boolean); }

async function showExamples() {
  const positive = keyList($("positive-input").value), negative = keyList($("negative-input").value);
  if (!positive.length && !negative.length) { say("Type at least one key to search like (or unlike).", true); return; }
  const name = state.index;
  try {
    const filter = currentFilter();
    const body = { positive, negative, k: Number($("k-select").value), method: $("method-select").value,
                   include_payload: hasPayload() };
    if (filter) body.filter = filter;
    const data = await api(`/indexes/${enc(name)}/examples`, body);
    if (state.index !== name) return;
    fillTable($("examples"), data.neighbors, body.method === "mul" ? "score" : scaleOf(data.score), showNeighbors);
    markMap(positive, data.neighbors.map((r) => r.key));
    const like = positive.join(" + ") + (negative.length ? " − " + negative.join(" − ") : "");
    say(`${data.neighbors.length} items like ${like} in ${state.index}${filter ? " matching the filter" : ""}`);
  } catch (e) { $("examples").hidden = true; clearMapMarks(); say(e.message, true); }
}

window.addEventListener("DOMContentLoaded", () => {
  $("index-select").addEventListener("change", (e) => selectIndex(e.target.value));
  $("key-input").addEventListener("input", debounce((e) => completeKeys(e.target.value), 120));
  $("user-input").addEventListener("input", debounce((e) => completeUsers(e.target.value), 120));
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); showNeighbors($("key-input").value); });
  $("user-form").addEventListener("submit", (e) => { e.preventDefault(); showRecommendations($("user-input").value); });
  $("examples-form").addEventListener("submit", (e) => { e.preventDefault(); showExamples(); });
  $("filter-form").addEventListener("submit", (e) => e.preventDefault());
  $("map").addEventListener("mousemove", mapHover);
  $("map").addEventListener("mouseleave", () => { $("map-label").hidden = true; });
  $("map").addEventListener("click", (e) => {
    const c = e.target.closest ? e.target.closest("circle.pt") : null;
    if (c) showNeighbors(c.dataset.key);
  });
  $("filter-input").addEventListener("input", () => { try { currentFilter(); } catch (e) { /* shown on use */ } });
  $("filter-clear").addEventListener("click", () => { $("filter-input").value = ""; currentFilter(); });
  loadIndexes().then(() => {
    const key = new URLSearchParams(location.hash.slice(1)).get("key");
    if (key && state.index) showNeighbors(key);
  }).catch((e) => say(e.message, true));
});
