// The web console: calls the gateway's REST API (same origin) with the signed-in user's bearer token.
// Views: query (editor, grid, plan graph), history, catalog tree, cache and source health.
"use strict";

const TOKEN_KEY = "gateway-console-token";
const USER_KEY = "gateway-console-user";
const SQL_KEY = "gateway-console-sql";
const DEFAULT_SQL = `-- a federated query over the demo: customers in SQLite, orders in Parquet
SELECT c.region, count(*) AS orders, sum(o.total) AS total
FROM demo_db.main.customers c
JOIN demo_lake.orders o ON o.customer_id = c.id
WHERE o.year = 2023 AND c.name LIKE 'A%'
GROUP BY c.region
ORDER BY c.region`;
const FILE_EXT = { csv: "csv", parquet: "parquet", arrow: "arrows", json: "json", ndjson: "ndjson" };

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY), running: null, last: null, kinds: {}, plan: null };

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// -- the REST API ---------------------------------------------------------------------------------------

async function errorOf(response) {
  let code = `http_${response.status}`, message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) { code = body.error.code || code; message = body.error.message || message; }
  } catch (_) { /* not JSON: keep the status text */ }
  return new ApiError(response.status, code, message);
}

/** fetch `path` with the user's token; a 401 asks for credentials (and throws). */
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    signOut();
    showLogin();
  }
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

// -- sign in --------------------------------------------------------------------------------------------

function base64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function showLogin() {
  const dialog = $("login");
  if (!dialog.open) dialog.showModal();
  $("login-user").focus();
}

function signOut() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  $("who").textContent = "";
  $("logout").hidden = true;
}

async function signIn(event) {
  event.preventDefault();
  const user = $("login-user").value, password = $("login-password").value;
  const response = await fetch("/v1/auth/token", { method: "POST", headers: { Authorization: `Basic ${base64(`${user}:${password}`)}` } });
  if (!response.ok) {
    $("login-error").textContent = (await errorOf(response)).message;
    return;
  }
  const body = await response.json();
  state.token = body.token;
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(USER_KEY, body.user);
  $("login-password").value = "";
  $("login-error").textContent = "";
  $("login").close();
  showUser();
  start();
}

function showUser() {
  const user = sessionStorage.getItem(USER_KEY);
  $("who").textContent = user ? `signed in as ${user}` : "auth off";
  $("logout").hidden = !user;
}

/** Whether the gateway asks for credentials: its token endpoint answers `"auth": "disabled"` when not. */
async function authRequired() {
  const response = await fetch("/v1/auth/token", { method: "POST" });
  if (response.ok) return (await response.json()).auth !== "disabled";
  return true;
}

// -- the editor -----------------------------------------------------------------------------------------

function paintEditor() {
  const text = $("sql").value;
  $("editor-highlight").innerHTML = highlightSql(text) + "\n";
  localStorage.setItem(SQL_KEY, text);
}

function editorKeys(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    if (event.shiftKey) explainOnly(); else run();
  } else if (event.key === "Tab" && !event.shiftKey) {
    event.preventDefault();
    document.execCommand("insertText", false, "  ");
  }
}

function currentSql() {
  const area = $("sql");
  const selected = area.value.slice(area.selectionStart, area.selectionEnd);
  return (selected.trim() ? selected : area.value).trim().replace(/;\s*$/, "");
}

// -- running a query ------------------------------------------------------------------------------------

function newQueryId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setStatus(kind, text) {
  const el = $("status");
  el.className = `status ${kind}`;
  el.textContent = text;
}

function setStats(rows, ms, bytes, id) {
  $("stat-rows").textContent = rows === null ? "" : `${formatCount(rows)} rows`;
  $("stat-time").textContent = ms === null ? "" : `${(ms / 1000).toFixed(3)} s`;
  $("stat-bytes").textContent = bytes === null ? "" : formatBytes(bytes);
  $("stat-id").textContent = id ? `query ${id}` : "";
}

async function run() {
  if (state.running) return;
  const sql = currentSql();
  if (!sql) return;
  const id = newQueryId();
  const t0 = performance.now();
  state.running = { id, t0 };
  $("run").disabled = true;
  $("cancel").disabled = false;
  setStatus("running", "running…");
  setStats(null, 0, null, id);
  const ticker = setInterval(() => setStats(null, performance.now() - t0, null, id), 100);
  try {
    const response = await api("/v1/query", { method: "POST", json: { sql, query_id: id, format: "json" } });
    const buffer = await response.arrayBuffer();
    const ms = performance.now() - t0;
    if (!response.ok) {
      const error = errorFromBody(response.status, buffer);
      setStatus(error.code === "cancelled" ? "cancelled" : "error", `${error.code}: ${error.message}`);
      setStats(null, ms, buffer.byteLength, id);
      return;
    }
    showResult(sql, id, buffer, ms);
  } catch (error) {
    setStatus("error", String(error.message || error));
  } finally {
    clearInterval(ticker);
    state.running = null;
    $("run").disabled = false;
    $("cancel").disabled = true;
  }
}

function errorFromBody(status, buffer) {
  try {
    const body = JSON.parse(new TextDecoder().decode(buffer));
    if (body && body.error) return new ApiError(status, body.error.code, body.error.message);
  } catch (_) { /* fall through */ }
  return new ApiError(status, `http_${status}`, `HTTP ${status}`);
}

function showResult(sql, id, buffer, ms) {
  let body;
  try {
    body = JSON.parse(new TextDecoder().decode(buffer));
  } catch (_) {
    // an error after the first row leaves the JSON document unterminated (see POST /v1/query)
    setStatus("error", "the result stream ended with an error; run again or look at the history");
    setStats(null, ms, buffer.byteLength, id);
    return;
  }
  renderGrid($("grid"), body.columns, body.rows);
  setStatus("ok", "done");
  setStats(body.row_count, ms, buffer.byteLength, id);
  state.last = { sql, id, rows: body.row_count };
  showPane("grid");
  drawPlan(sql, id, body.row_count);
}

async function cancel() {
  if (!state.running) return;
  const id = state.running.id;
  setStatus("running", "cancelling…");
  // a click right after Run may come before the gateway registered the query id: 404, tried again shortly
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const answer = await apiJson(`/v1/queries/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (state.running && state.running.id === id) setStatus("running", answer.status === "cancelled" ? "cancelled" : "cancelling…");
      return;
    } catch (error) {
      if (error.status !== 404 || !state.running || state.running.id !== id) {
        if (state.running) setStatus("running", `cancel: ${error.message}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The plan graph of `sql` (POST /v1/explain), with each fragment's actual rows from the history entry of
 * query `id` once it ran. */
async function drawPlan(sql, id, resultRows) {
  try {
    const plan = await apiJson("/v1/explain", { method: "POST", json: { sql } });
    let entry = null;
    if (id) {
      const history = await apiJson("/v1/history?limit=100");  // newest first: this query is among them
      entry = history.find((h) => h.query_id === id) || null;
    }
    state.plan = plan;
    renderPlan($("plan"), plan, entry, state.kinds, resultRows);
    $("plan-text").textContent = plan.plan;
  } catch (error) {
    $("plan").textContent = `no plan: ${error.message}`;
    $("plan-text").textContent = "";
  }
}

async function explainOnly() {
  const sql = currentSql();
  if (!sql) return;
  setStatus("running", "planning…");
  await drawPlan(sql, null, null);
  setStatus("ok", "planned (not run)");
  showPane("plan");
}

async function download(format) {
  const sql = state.last ? state.last.sql : currentSql();
  if (!sql) return;
  setStatus("running", `downloading ${format}…`);
  const response = await api("/v1/query", { method: "POST", json: { sql, format } });
  if (!response.ok) {
    const error = await errorOf(response);
    setStatus("error", `${format}: ${error.message}`);
    return;
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `result.${FILE_EXT[format] || format}`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  setStatus("ok", `downloaded ${format} (${formatBytes(blob.size)})`);
}

// -- views ----------------------------------------------------------------------------------------------

function showView(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("active", v.id === `view-${name}`);
  if (name === "history") loadHistory();
  if (name === "catalog") loadCatalog();
  if (name === "status") loadStatus();
}

function showPane(name) {
  for (const b of document.querySelectorAll("#result-tabs button")) b.classList.toggle("active", b.dataset.pane === name);
  for (const p of document.querySelectorAll(".pane")) p.classList.toggle("active", p.id === `pane-${name}`);
}

function td(text, className) {
  const cell = document.createElement("td");
  cell.textContent = text === null || text === undefined ? "" : String(text);
  if (className) cell.className = className;
  return cell;
}

function rowsPerSource(entry) {
  const totals = {};
  for (const f of entry.fragments || []) totals[f.source] = (totals[f.source] || 0) + f.rows;
  return Object.entries(totals).map(([s, n]) => `${s}: ${formatCount(n)}`).join(", ");
}

async function loadHistory() {
  const body = $("history-table").tBodies[0];
  try {
    const entries = await apiJson("/v1/history?limit=200");
    body.replaceChildren(...entries.map((h) => {  // newest first
      const tr = document.createElement("tr");
      tr.dataset.queryId = h.query_id;
      tr.append(td(new Date(h.started_at * 1000).toLocaleString()), td(h.status, `state ${h.status}`),
        td(h.user || "—"), td(h.protocol), td(h.seconds.toFixed(3), "num"), td(formatCount(h.rows), "num"),
        td(rowsPerSource(h)), sqlCell(h));
      tr.addEventListener("click", () => { $("sql").value = h.sql; paintEditor(); showView("query"); });
      return tr;
    }));
  } catch (error) {
    body.replaceChildren(errorRow(error, 8));
  }
}

/** The history's SQL cell: one line (comments and line breaks folded), the whole text and error as a tooltip. */
function sqlCell(entry) {
  const cell = td(entry.sql.replace(/--[^\n]*\n/g, " ").replace(/\s+/g, " ").trim(), "sql-cell");
  cell.title = entry.error ? `${entry.sql}\n\n${entry.error}` : entry.sql;
  if (entry.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = entry.error;
    cell.appendChild(error);
  }
  return cell;
}

function errorRow(error, span) {
  const tr = document.createElement("tr");
  const cell = td(error.message, "error");
  cell.colSpan = span;
  tr.appendChild(cell);
  return tr;
}

function treeItem(label, detail, className) {
  const li = document.createElement("li");
  li.className = className;
  const span = document.createElement("span");
  span.className = "tree-label";
  span.textContent = label;
  li.appendChild(span);
  if (detail) {
    const d = document.createElement("span");
    d.className = "tree-detail";
    d.textContent = detail;
    li.appendChild(d);
  }
  return li;
}

function collapsible(li, children, open) {
  const ul = document.createElement("ul");
  ul.append(...children);
  li.appendChild(ul);
  li.classList.add(open ? "open" : "closed");
  li.firstChild.addEventListener("click", (event) => {
    event.stopPropagation();
    li.classList.toggle("open");
    li.classList.toggle("closed");
  });
}

async function loadCatalog() {
  const tree = $("tree");
  try {
    const sources = await apiJson("/v1/console/catalog");
    tree.replaceChildren(...sources.map((s) => {
      state.kinds[s.name] = s.kind;
      const li = treeItem(s.name, s.kind, "tree-source");
      if (s.error) { li.appendChild(treeItem(s.error, "", "error")); return li; }
      collapsible(li, s.schemas.map((schema) => {
        const sl = treeItem(schema.name, `${schema.tables.length} tables`, "tree-schema");
        collapsible(sl, schema.tables.map((t) => tableItem(s.name, schema.name, t)), true);
        return sl;
      }), true);
      return li;
    }));
  } catch (error) {
    tree.replaceChildren(treeItem(error.message, "", "error"));
  }
}

function tableItem(source, schema, table) {
  const li = treeItem(table.name, table.error ? "unreadable" : (table.type || "").toLowerCase(), "tree-table");
  li.dataset.table = `${source}.${schema}.${table.name}`;
  collapsible(li, (table.columns || []).map((c) => treeItem(c.name, c.type + (c.nullable ? "" : " not null"), "tree-column")), false);
  li.firstChild.addEventListener("click", () => showTable(source, schema, table));
  return li;
}

async function showTable(source, schema, table) {
  const pane = $("table-detail");
  const title = document.createElement("h2");
  title.textContent = `${source}.${schema}.${table.name}`;
  const query = document.createElement("button");
  query.textContent = "Query it";
  query.addEventListener("click", () => {
    $("sql").value = `SELECT *\nFROM ${source}.${schema}.${table.name}\nLIMIT 100`;
    paintEditor();
    showView("query");
  });
  pane.replaceChildren(title, query);
  let stats = { columns: {} };
  try {
    stats = await apiJson(`/v1/sources/${encodeURIComponent(source)}/tables/${encodeURIComponent(table.name)}/statistics?schema=${encodeURIComponent(schema)}`);
  } catch (error) {
    pane.appendChild(td(`statistics: ${error.message}`, "error"));
  }
  const summary = document.createElement("p");
  summary.textContent = `${formatCount(stats.rows)} rows · ${formatBytes(stats.bytes)} · ${(table.type || "").toLowerCase()}`;
  const grid = document.createElement("table");
  grid.className = "data";
  grid.innerHTML = "<thead><tr><th>column</th><th>type</th><th>nullable</th><th class='num'>distinct</th>" +
    "<th class='num'>null fraction</th><th>min</th><th>max</th><th>most common</th><th>origin</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const c of table.columns || []) {
    const s = stats.columns[c.name] || {};
    const tr = document.createElement("tr");
    const common = (s.most_common || []).slice(0, 3).map(([v, f]) => `${v} (${(f * 100).toFixed(1)}%)`).join(", ");
    tr.append(td(c.name), td(c.type), td(c.nullable ? "yes" : "no"), td(s.distinct === null || s.distinct === undefined ? "" : formatCount(s.distinct), "num"),
      td(s.null_fraction === null || s.null_fraction === undefined ? "" : s.null_fraction.toFixed(3), "num"),
      td(s.min), td(s.max), td(common), td(s.origin, "muted"));
    body.appendChild(tr);
  }
  grid.appendChild(body);
  pane.append(summary, grid);
}

function card(label, value) {
  const div = document.createElement("div");
  div.className = "card";
  const v = document.createElement("div");
  v.className = "card-value";
  v.textContent = value;
  const l = document.createElement("div");
  l.className = "card-label";
  l.textContent = label;
  div.append(v, l);
  return div;
}

async function loadStatus() {
  await loadKinds();
  const health = $("health-table").tBodies[0];
  try {
    const response = await api("/readyz");
    const body = await response.json();  // 503: the error shape, {"error": {..., "sources"}}
    const sources = body.sources || (body.error && body.error.sources) || {};
    health.replaceChildren(...Object.entries(sources).map(([name, r]) => {
      const tr = document.createElement("tr");
      tr.append(td(name), td(state.kinds[name] || ""), td(r.status, `state ${r.status}`), td(r.seconds, "num"));
      return tr;
    }));
  } catch (error) {
    health.replaceChildren(errorRow(error, 4));
  }
  const entries = $("cache-table").tBodies[0];
  try {
    const cache = await apiJson("/v1/cache");
    const s = cache.stats, lookups = s.hits + s.misses;
    $("cache-summary").replaceChildren(
      card("memory", `${formatBytes(cache.memory.used_bytes)} of ${formatBytes(cache.memory.budget_bytes)}`),
      card("disk", cache.disk.path ? `${formatBytes(cache.disk.used_bytes)} of ${formatBytes(cache.disk.budget_bytes)}` : "off"),
      card("partitions", formatCount(cache.entries.length)),
      card("hit rate", lookups ? `${((100 * s.hits) / lookups).toFixed(1)} % of ${formatCount(lookups)}` : "no lookups yet"),
      card("bytes served / fetched", `${formatBytes(s.bytes_served)} / ${formatBytes(s.bytes_fetched)}`),
      card("evictions", formatCount(s.evictions)));
    entries.replaceChildren(...cache.entries.map((e) => {
      const tr = document.createElement("tr");
      tr.append(td(e.source), td(`${e.schema}.${e.table}`), td(e.partition), td((e.columns || []).join(", ")), td(e.tier),
        td(formatBytes(e.bytes), "num"), td(e.age_s.toFixed(1), "num"), td(e.hits, "num"));
      return tr;
    }));
    if (!cache.entries.length) entries.replaceChildren(errorRow({ message: "no cached partitions" }, 8));
  } catch (error) {
    entries.replaceChildren(errorRow(error, 8));
  }
}

async function loadKinds() {
  try {
    for (const s of await apiJson("/v1/sources")) state.kinds[s.name] = s.kind;
  } catch (_) { /* the views say what failed */ }
}

// -- start ----------------------------------------------------------------------------------------------

function wire() {
  const area = $("sql");
  area.value = localStorage.getItem(SQL_KEY) || DEFAULT_SQL;
  area.addEventListener("input", paintEditor);
  area.addEventListener("keydown", editorKeys);
  area.addEventListener("scroll", () => {
    $("editor-highlight").scrollTop = area.scrollTop;
    $("editor-highlight").scrollLeft = area.scrollLeft;
  });
  paintEditor();
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("explain").addEventListener("click", explainOnly);
  for (const b of document.querySelectorAll(".download")) b.addEventListener("click", () => download(b.dataset.format));
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showView(b.dataset.view));
  for (const b of document.querySelectorAll("#result-tabs button")) b.addEventListener("click", () => showPane(b.dataset.pane));
  $("history-refresh").addEventListener("click", loadHistory);
  $("catalog-refresh").addEventListener("click", loadCatalog);
  $("status-refresh").addEventListener("click", loadStatus);
  $("login-form").addEventListener("submit", signIn);
  $("login").addEventListener("cancel", (event) => event.preventDefault());
  $("logout").addEventListener("click", () => { signOut(); showLogin(); });
}

async function start() {
  await loadKinds();
  document.body.dataset.ready = "true";
}

window.addEventListener("DOMContentLoaded", async () => {
  wire();
  if (await authRequired() && !state.token) {
    showLogin();
    return;
  }
  showUser();
  start();
});
