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

function fillTable(table, rows, scoreKind, onClick) {
  const body = table.querySelector("tbody");
  const withPayload = rows.some((r) => r.payload !== undefined);
  table.classList.toggle("no-payload", !withPayload);
  const scores = rows.map((r) => r.score);
  const lo = Math.min(...scores), hi = Math.max(...scores);
  body.replaceChildren(...rows.map((r, i) => {
    const tr = document.createElement("tr");
    const rank = document.createElement("td"); rank.className = "rank"; rank.textContent = String(i + 1);
    const key = document.createElement("td"); key.className = "key";
    if (onClick) {
      const a = document.createElement("a"); a.textContent = r.key; a.title = "neighbours of " + r.key;
      a.addEventListener("click", () => onClick(r.key)); key.appendChild(a);
    } else { key.textContent = r.key; }
    const score = document.createElement("td"); score.className = "score";
    // bar length: closer = longer (distances are inverted)
    let frac = hi > lo ? (r.score - lo) / (hi - lo) : 1;
    if (scoreKind === "distance") frac = 1 - frac;
    const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (10 + 150 * frac) + "px";
    const val = document.createElement("span"); val.className = "value"; val.textContent = r.score.toFixed(4);
    score.append(bar, val);
    tr.append(rank, key, score);
    if (withPayload) tr.appendChild(payloadCell(r.payload));
    return tr;
  }));
  table.hidden = rows.length === 0;
}

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
    fillTable($("neighbors"), data.neighbors, data.score, showNeighbors);
    say(`${data.neighbors.length} neighbours of “${key}” in ${state.index}${filter ? " matching the filter" : ""}`);
    history.replaceState(null, "", `#index=${enc(state.index)}&key=${enc(key)}`);
  } catch (e) { $("neighbors").hidden = true; say(e.message, true); }
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
    fillTable($("recommendations"), data.recommendations, "similarity", null);
    const seen = new Set(data.history.map((h) => h.key));
    $("history").replaceChildren(...data.history.map((h) => {
      const li = document.createElement("li");
      const key = document.createElement("span"); key.className = "key"; key.textContent = h.key;
      const val = document.createElement("span"); val.className = "muted"; val.textContent = ` ${h.value}`;
      li.append(key, val); return li;
    }));
    $("recommendations").querySelectorAll("td.key").forEach((td) => { if (seen.has(td.textContent)) td.classList.add("seen"); });
    say(`${data.recommendations.length} recommendations for “${user}” (${data.history.length} items in their history)`);
  } catch (e) { $("recommendations").hidden = true; say(e.message, true); }
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
    fillTable($("examples"), data.neighbors, data.score, showNeighbors);
    const like = positive.join(" + ") + (negative.length ? " − " + negative.join(" − ") : "");
    say(`${data.neighbors.length} items like ${like} in ${state.index}${filter ? " matching the filter" : ""}`);
  } catch (e) { $("examples").hidden = true; say(e.message, true); }
}

window.addEventListener("DOMContentLoaded", () => {
  $("index-select").addEventListener("change", (e) => selectIndex(e.target.value));
  $("key-input").addEventListener("input", debounce((e) => completeKeys(e.target.value), 120));
  $("user-input").addEventListener("input", debounce((e) => completeUsers(e.target.value), 120));
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); showNeighbors($("key-input").value); });
  $("user-form").addEventListener("submit", (e) => { e.preventDefault(); showRecommendations($("user-input").value); });
  $("examples-form").addEventListener("submit", (e) => { e.preventDefault(); showExamples(); });
  $("filter-form").addEventListener("submit", (e) => e.preventDefault());
  $("filter-input").addEventListener("input", () => { try { currentFilter(); } catch (e) { /* shown on use */ } });
  $("filter-clear").addEventListener("click", () => { $("filter-input").value = ""; currentFilter(); });
  loadIndexes().then(() => {
    const key = new URLSearchParams(location.hash.slice(1)).get("key");
    if (key && state.index) showNeighbors(key);
  }).catch((e) => say(e.message, true));
});
