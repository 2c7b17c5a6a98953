// The result grid: a header with each column's name and Arrow type, and only the rows in view rendered (a
// 100,000-row result keeps ~60 row elements in the page), so scrolling stays fast whatever the row count.
"use strict";

const GRID_ROW_H = 24;        // px, one row (CSS .grid-row has the same height)
const GRID_OVERSCAN = 10;     // rows rendered above and below the visible ones
const NUMERIC_TYPE = /^(u?int|float|double|decimal|halffloat)/;

/** Show `columns` ([{name, type}]) and `rows` ([[value, ...]], JSON values as the REST API sends them) in
 * `host` (emptied first). Returns nothing; cells are text (never HTML), NULL shown greyed. */
function renderGrid(host, columns, rows) {
  host.replaceChildren();
  const widths = columnWidths(columns, rows);
  const numW = Math.max(36, String(rows.length).length * 8 + 14);
  const total = numW + widths.reduce((a, b) => a + b, 0);
  const numeric = columns.map((c) => NUMERIC_TYPE.test(c.type));

  const body = document.createElement("div");
  body.className = "grid-body";
  const inner = document.createElement("div");
  inner.className = "grid-inner";
  inner.style.width = `${total}px`;
  inner.style.height = `${(rows.length + 1) * GRID_ROW_H}px`;

  const head = document.createElement("div");
  head.className = "grid-row grid-header";
  head.appendChild(cell("#", numW, "grid-num"));
  columns.forEach((c, i) => {
    const h = cell("", widths[i], numeric[i] ? "grid-cell num" : "grid-cell");
    const name = document.createElement("span");
    name.className = "col-name";
    name.textContent = c.name;
    const type = document.createElement("span");
    type.className = "col-type";
    type.textContent = c.type;
    h.append(name, type);
    h.title = `${c.name}: ${c.type}`;
    head.appendChild(h);
  });
  const view = document.createElement("div");
  view.className = "grid-window";
  inner.append(head, view);
  body.appendChild(inner);
  // as tall as the rows (plus a scroll bar), at most what the CSS allows
  body.style.height = `${(rows.length + 1) * GRID_ROW_H + 18}px`;
  host.appendChild(body);

  let shown = [-1, -1];
  function draw() {
    const first = Math.max(0, Math.floor(body.scrollTop / GRID_ROW_H) - GRID_OVERSCAN);
    const visible = Math.ceil((body.clientHeight || 400) / GRID_ROW_H) + 2 * GRID_OVERSCAN;
    const last = Math.min(rows.length, first + visible);
    if (first === shown[0] && last === shown[1]) return;
    shown = [first, last];
    const fragment = document.createDocumentFragment();
    for (let r = first; r < last; r++) {
      const row = document.createElement("div");
      row.className = r % 2 ? "grid-row odd" : "grid-row";
      row.dataset.row = String(r);
      row.appendChild(cell(String(r + 1), numW, "grid-num"));
      rows[r].forEach((v, i) => {
        const c = cell(v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v), widths[i],
          (numeric[i] ? "grid-cell num" : "grid-cell") + (v === null ? " null" : ""));
        row.appendChild(c);
      });
      fragment.appendChild(row);
    }
    view.style.transform = `translateY(${first * GRID_ROW_H}px)`;
    view.replaceChildren(fragment);
  }
  body.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
  draw();
}

function cell(text, width, className) {
  const div = document.createElement("div");
  div.className = className;
  div.style.width = `${width}px`;
  div.textContent = text;
  return div;
}

/** Pixel widths per column from the header and the first 200 rows (clamped to 70..360). */
function columnWidths(columns, rows) {
  return columns.map((c, i) => {
    let chars = c.name.length + c.type.length + 2;  // the header shows both side by side
    for (let r = 0; r < Math.min(rows.length, 200); r++) {
      const v = rows[r][i];
      chars = Math.max(chars, v === null ? 4 : String(typeof v === "object" ? JSON.stringify(v) : v).length);
    }
    return Math.min(360, Math.max(70, chars * 7.5 + 18));
  });
}
