// The federated plan as an SVG graph: one box per fragment (its source, the SQL pushed to it, rows estimated
// and actual), the residual plan DataFusion runs locally (its SQL and what stayed local and why), the result.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PLAN_LINE_H = 16;
const PLAN_HEAD_H = 26;
const PLAN_PAD = 10;
const SOURCE_COLOURS = ["#2f6fb2", "#2e8b57", "#b5651d", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** `text` cut into lines of at most `width` characters (at spaces where possible), at most `max` lines
 * (the last one ending in an ellipsis when text was left out). */
function wrapText(text, width, max) {
  const lines = [];
  let line = "";
  for (const word of String(text).split(/\s+/).filter(Boolean)) {
    let w = word;
    while (w.length > width) {  // a word longer than a line is broken
      if (line) { lines.push(line); line = ""; }
      lines.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!line) line = w;
    else if (line.length + 1 + w.length <= width) line += " " + w;
    else { lines.push(line); line = w; }
  }
  if (line) lines.push(line);
  if (lines.length > max) {
    const kept = lines.slice(0, max);
    kept[max - 1] = kept[max - 1].slice(0, width - 1) + "…";
    return kept;
  }
  return lines;
}

function formatCount(n) {
  return n === null || n === undefined ? "?" : Number(n).toLocaleString("en-US");
}

function formatBytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n), u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}

/** One node: a box with a coloured title bar and lines of [text, className]. Returns {g, height}. */
function planNode(x, y, width, title, colour, lines, attrs) {
  const height = PLAN_HEAD_H + PLAN_PAD + lines.length * PLAN_LINE_H + PLAN_PAD / 2;
  const g = svg("g", { transform: `translate(${x},${y})`, ...attrs });
  g.appendChild(svg("rect", { class: "plan-box", width, height, rx: 6, ry: 6 }));
  g.appendChild(svg("rect", { class: "plan-head", width, height: PLAN_HEAD_H, rx: 6, ry: 6, fill: colour }));
  g.appendChild(svg("rect", { width, height: 6, y: PLAN_HEAD_H - 6, fill: colour }));
  g.appendChild(svg("text", { class: "plan-title", x: PLAN_PAD, y: 18 }, title));
  lines.forEach(([text, cls], i) => {
    g.appendChild(svg("text", { class: cls || "plan-text", x: PLAN_PAD, y: PLAN_HEAD_H + PLAN_PAD + 10 + i * PLAN_LINE_H }, text));
  });
  return { g, height };
}

function fragmentLines(f, actual) {
  const lines = [[`reads ${f.tables.join(", ")}`, "plan-text"]];
  for (const p of f.pushed || []) wrapText(`pushed: ${p}`, 62, 2).forEach((l) => lines.push([l, "plan-pushed"]));
  wrapText(f.sql, 62, 6).forEach((l) => lines.push([l, "plan-sql"]));
  const est = f.estimated_rows ?? (actual ? actual.estimated_rows : null);
  let rows = est === null || est === undefined ? "no estimate" : `estimated ${formatCount(est)} rows`;
  if (actual) rows += ` · actual ${formatCount(actual.rows)} rows, ${formatBytes(actual.bytes)}`;
  lines.push([rows, "plan-rows"]);
  if (actual && actual.partitions && actual.partitions.length) {
    const uses = actual.partitions.map((u) => `${u.partition} ${u.status}` + (u.age_s === null || u.age_s === undefined ? "" : ` (${u.age_s.toFixed(1)} s old)`));
    wrapText(`partitions: ${uses.join(", ")}`, 62, 3).forEach((l) => lines.push([l, "plan-note"]));
  }
  if (actual && actual.read_in_place) lines.push(["read in place: DataFusion scans the files itself", "plan-note"]);
  if (actual && actual.dynamic_filter) wrapText(`dynamic filter: ${actual.dynamic_filter}`, 62, 2).forEach((l) => lines.push([l, "plan-note"]));
  return lines;
}

function residualLines(plan, sources) {
  const lines = [];
  const sql = plan.residual_sql.replace(/^\/\*[\s\S]*?\*\/\s*/, "");  // the query's leading comment, kept by the planner
  wrapText(sql, 54, 8).forEach((l) => lines.push([l, "plan-sql"]));
  lines.push(["stayed local:", "plan-why-title"]);
  const before = lines.length;
  if (sources.length > 1) {
    wrapText(`• combining fragments of ${sources.length} sources (${sources.join(", ")}): no one source has them all`, 54, 3)
      .forEach((l) => lines.push([l, "plan-why"]));
  }
  for (const n of plan.not_pushed || []) wrapText(`• ${n.what}: ${n.reason}`, 54, 3).forEach((l) => lines.push([l, "plan-why"]));
  if (lines.length === before) lines.push(["what the fragments did not compute", "plan-why"]);
  return lines;
}

function edge(parent, x1, y1, x2, y2, label) {
  const mid = (x1 + x2) / 2;
  parent.appendChild(svg("path", { class: "plan-edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": "url(#plan-arrow)" }));
  if (label) parent.appendChild(svg("text", { class: "plan-edge-label", x: mid, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, label));
}

/** Draw `plan` (the JSON of POST /v1/explain) into `host` (emptied first). `actual`: the history entry of a
 * run of it (GET /v1/history), for rows and bytes per fragment; `kinds`: {source: kind}; `resultRows`: rows
 * of the result, when known. */
function renderPlan(host, plan, actual, kinds, resultRows) {
  host.replaceChildren();
  const byId = {};
  for (const f of (actual && actual.fragments) || []) byId[f.id] = f;
  const sources = [...new Set(plan.fragments.map((f) => f.source))].sort();
  const colour = (s) => SOURCE_COLOURS[sources.indexOf(s) % SOURCE_COLOURS.length];
  const root = svg("svg", { class: "plan-svg", xmlns: SVG_NS });
  const defs = svg("defs");
  const marker = svg("marker", { id: "plan-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
  marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "plan-arrow" }));
  defs.appendChild(marker);
  root.appendChild(defs);

  const fragW = 470, resW = 420, resultW = 170, gapX = 80, x0 = 10;
  let y = 10;
  const placed = [];
  for (const f of plan.fragments) {
    const a = byId[f.id];
    const kind = kinds && kinds[f.source] ? ` (${kinds[f.source]})` : "";
    const node = planNode(x0, y, fragW, `${f.source}${kind} · ${f.id}`, colour(f.source), fragmentLines(f, a),
      { class: "plan-node plan-fragment", "data-source": f.source, "data-fragment": f.id });
    node.g.appendChild(svg("title", {}, f.sql));
    root.appendChild(node.g);
    placed.push({ f, a, y, height: node.height });
    y += node.height + 24;
  }
  const fragmentsH = y - 24;
  const resultLabel = resultRows === null || resultRows === undefined ? "result" : `${formatCount(resultRows)} rows`;
  let consumerX, consumerY, totalW, totalH;
  if (plan.pushed_whole) {
    consumerX = x0 + fragW + gapX;
    consumerY = fragmentsH / 2;
  } else {
    const lines = residualLines(plan, sources);
    const h = PLAN_HEAD_H + PLAN_PAD + lines.length * PLAN_LINE_H + PLAN_PAD / 2;
    const rx = x0 + fragW + gapX, ry = Math.max(10, (fragmentsH - h) / 2 + 5);
    const node = planNode(rx, ry, resW, "DataFusion · residual plan (local)", "#444", lines, { class: "plan-node plan-residual" });
    node.g.appendChild(svg("title", {}, plan.residual_sql));
    root.appendChild(node.g);
    for (const p of placed) {
      edge(root, x0 + fragW, p.y + p.height / 2, rx, ry + h / 2,
        p.a ? `${formatCount(p.a.rows)} rows` : `est. ${formatCount(p.f.estimated_rows)}`);
    }
    consumerX = rx + resW + gapX;
    consumerY = ry + h / 2;
    totalH = Math.max(fragmentsH, ry + h) + 20;
  }
  const result = planNode(consumerX, consumerY - 30, resultW, "Result", "#666", [[resultLabel, "plan-rows"],
    [plan.pushed_whole ? "whole query pushed down" : "streamed to the client", "plan-text"]], { class: "plan-node plan-result" });
  root.appendChild(result.g);
  if (plan.pushed_whole) {
    const p = placed[0];
    edge(root, x0 + fragW, p.y + p.height / 2, consumerX, consumerY, p.a ? `${formatCount(p.a.rows)} rows` : "");
    totalH = Math.max(fragmentsH, consumerY + 40) + 20;
  } else {
    edge(root, consumerX - gapX, consumerY, consumerX, consumerY, "");
  }
  totalW = consumerX + resultW + 10;
  root.setAttribute("width", totalW);
  root.setAttribute("height", totalH);
  root.setAttribute("viewBox", `0 0 ${totalW} ${totalH}`);
  host.appendChild(root);
}
