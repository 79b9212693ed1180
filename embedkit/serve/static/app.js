// embedkit explorer: pick an index, look up neighbours of a key, recommendations for a user.
// Plain browser JavaScript, no build step. Text from the server is inserted with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { index: null, info: null };

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
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

function fillTable(table, rows, scoreKind, onClick) {
  const body = table.querySelector("tbody");
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
  $("neighbors").hidden = true; $("recommendations").hidden = true; $("history").replaceChildren();
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
    const data = await api(`/indexes/${enc(name)}/neighbors?key=${enc(key)}&k=${k}`);
    if (state.index !== name) return;
    fillTable($("neighbors"), data.neighbors, data.score, showNeighbors);
    say(`${data.neighbors.length} neighbours of “${key}” in ${state.index}`);
    history.replaceState(null, "", `#index=${enc(state.index)}&key=${enc(key)}`);
  } catch (e) { $("neighbors").hidden = true; say(e.message, true); }
}

async function showRecommendations(user) {
  user = user.trim();
  if (!user) { say("Type a user first.", true); return; }
  const exclude = $("exclude-seen").checked;
  const name = state.index;
  try {
    const data = await api(`/indexes/${enc(name)}/recommend?user=${enc(user)}&k=${$("k-select").value}&exclude_seen=${exclude}`);
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

window.addEventListener("DOMContentLoaded", () => {
  $("index-select").addEventListener("change", (e) => selectIndex(e.target.value));
  $("key-input").addEventListener("input", debounce((e) => completeKeys(e.target.value), 120));
  $("user-input").addEventListener("input", debounce((e) => completeUsers(e.target.value), 120));
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); showNeighbors($("key-input").value); });
  $("user-form").addEventListener("submit", (e) => { e.preventDefault(); showRecommendations($("user-input").value); });
  loadIndexes().then(() => {
    const key = new URLSearchParams(location.hash.slice(1)).get("key");
    if (key && state.index) showNeighbors(key);
  }).catch((e) => say(e.message, true));
});
