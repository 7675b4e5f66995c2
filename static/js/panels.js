// The heatmap panels: one column per path, one row per channel, drawn from exact values.
// One tab stop per panel (column): arrows move the pixel, Page Up/Down the channel, Enter
// enlarges. Hover (mouse) or tap reads the exact values at a pixel. Canvases are reused
// while the layout stays the same, so focus survives every re-run.

import { $, el } from "./dom.js";
import { fmt, paintChannel, pixelValues, scaleFor, valueAt, writtenSum } from "./heatmap.js";
import { columnTitle, panelText, readoutText, zoomText } from "./story.js";

const VECTOR_SHOWN = 16; // channel values listed in the readout before "… n more"

/** The server's panel definitions (name → title, short caption); set by setup(). */
let panels = {};
/** What the panels show now; set by show(). */
let model = null;
/** A column's title: the response's own (a network's layer names) or the usual one. */
const titleOf = (col) => (model && model.titles && model.titles[col]) || columnTitle(col, panels);
/** A tile's caption on a narrow page: the panel's short title. */
const shortOf = (col) => (panels[col] ? panels[col].short : titleOf(col));
/** The channel's name where the column holds the input's channels (not the outputs'). */
const nameIn = (col, c) => (["input", "relu_only"].includes(col) && model.names[c]) || "";
let observer = null;
const focusRow = {}; // the row of each column that holds its tab stop
let cursor = null; // {col, ch, y, x}

function lutFor(scale) {
  if (model.grey) return model.grey;
  return scale.diverging ? model.luts.diverging : model.luts.sequential;
}

function drawCell(canvas) {
  const hm = model.maps[canvas.dataset.col];
  const c = Number(canvas.dataset.ch);
  const scale = scaleFor(hm.lo, hm.hi, model.scale, c);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(hm.width, hm.height);
  paintChannel(img.data, hm, c, scale, lutFor(scale));
  ctx.putImageData(img, 0, 0);
  canvas.dataset.drawn = "1";
}

function drawBar(canvas, scale) {
  const lut = lutFor(scale);
  canvas.width = 256;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(256, 1);
  for (let i = 0; i < 256; i++) img.data.set([lut[3 * i], lut[3 * i + 1], lut[3 * i + 2], 255], 4 * i);
  ctx.putImageData(img, 0, 0);
}

function cellSize(root, cols, rows) {
  const avail = root.clientWidth || 600;
  const narrow = avail < 600;
  root.classList.toggle("narrow", narrow);
  const gap = 8;
  if (narrow) {
    const perLine = Math.min(cols, rows <= 8 ? 2 : 3);
    root.style.setProperty("--per-line", String(perLine));
    return Math.floor((avail - gap * (perLine - 1)) / perLine);
  }
  const label = 96;
  const cap = rows <= 8 ? 240 : 110;
  return Math.max(64, Math.min(cap, Math.floor((avail - label - gap * cols) / cols)));
}

function build(root, cols, rows, h, w) {
  const head = el("div", { className: "prow head", "aria-hidden": "true" }, el("span", { className: "rowlabel" }));
  for (const col of cols) {
    head.append(
      el(
        "div",
        { className: "colhead", dataset: { col } },
        el("strong", {}),
        el("canvas", { className: "bar" }),
        el("div", { className: "ticks" }, el("span"), el("span"), el("span")),
      ),
    );
  }
  const frag = document.createDocumentFragment();
  frag.append(head);
  for (let i = 0; i < rows; i++) {
    const row = el("div", { className: "prow", dataset: { row: String(i) } }, el("span", { className: "rowlabel" }));
    for (const col of cols) {
      if (i >= model.maps[col].channels) {
        row.append(el("span", { className: "cellbox empty" }));
        continue;
      }
      const canvas = el("canvas", {
        className: "cell",
        width: w,
        height: h,
        tabIndex: i === (focusRow[col] || 0) ? 0 : -1,
        role: "img",
        "aria-describedby": "panel-keys",
        dataset: { col, ch: String(i) },
      });
      row.append(el("div", { className: "cellbox" }, canvas, el("span", { className: "cap", textContent: panelText.caption(shortOf(col), i), "aria-hidden": "true" })));
    }
    frag.append(row);
  }
  root.replaceChildren(frag);
}

/**
 * Show a response's maps. Rebuilds the cells only when the columns, channel count or map size
 * change; otherwise redraws in place (focus and cursor stay).
 * @param {HTMLElement} root
 * @param {{maps: object, cols: string[], names: string[], stride: number, height: number, width: number,
 *   scale: "shared"|"channel", luts: object, weight: object, bias: object, titles?: Record<string, string>}} m
 *   `titles` replace the usual column titles (a network's layer names its columns)
 */
export function show(root, m) {
  model = m;
  const rows = Math.max(...m.cols.map((c) => m.maps[c].channels));
  const key = JSON.stringify([m.cols, m.cols.map((c) => m.maps[c].channels), m.height, m.width]);
  if (root.dataset.key !== key) {
    for (const col of Object.keys(focusRow)) if (!m.cols.includes(col) || focusRow[col] >= m.maps[col].channels) delete focusRow[col];
    if (cursor && (!m.cols.includes(cursor.col) || cursor.ch >= m.maps[cursor.col].channels || cursor.y >= m.height || cursor.x >= m.width)) cursor = null;
    build(root, m.cols, rows, m.height, m.width);
    root.dataset.key = key;
  }
  const cell = cellSize(root, m.cols.length, rows);
  root.style.setProperty("--cols", String(m.cols.length));
  root.style.setProperty("--cell", `${cell}px`);
  root.style.setProperty("--aspect", `${m.width} / ${m.height}`);
  for (const box of root.querySelectorAll(".colhead")) {
    const hm = m.maps[box.dataset.col];
    const shared = scaleFor(hm.lo, hm.hi, "shared", 0);
    box.querySelector("strong").textContent = panelText.head(titleOf(box.dataset.col), hm.channels);
    drawBar(box.querySelector("canvas"), shared);
    const labels = m.scale === "shared" ? [fmt(shared.min, 3), shared.diverging ? "0" : "", fmt(shared.max, 3)] : panelText.perChannel;
    box.querySelectorAll(".ticks span").forEach((s, i) => (s.textContent = labels[i]));
  }
  for (const label of root.querySelectorAll(".prow[data-row] .rowlabel")) {
    const i = Number(label.parentElement.dataset.row);
    // The server names every channel (e.g. cat evidence, dog evidence, distractor 2, …), at any C.
    label.textContent = panelText.row(i, m.names[i]);
  }
  for (const canvas of root.querySelectorAll("canvas.cell")) {
    const what = nameIn(canvas.dataset.col, Number(canvas.dataset.ch)) || panelText.channel(canvas.dataset.ch);
    canvas.setAttribute("aria-label", panelText.cell(titleOf(canvas.dataset.col), what));
    delete canvas.dataset.drawn;
  }
  if (observer) observer.disconnect();
  observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          drawCell(e.target);
          observer.unobserve(e.target);
        }
      }
    },
    { rootMargin: "400px 0px" },
  );
  // A few maps are drawn at once; many, as they come near the screen.
  const cells = root.querySelectorAll("canvas.cell");
  const viewport = window.innerHeight;
  for (const canvas of cells) {
    if (cells.length <= 96 || canvas.getBoundingClientRect().top < viewport + 400) drawCell(canvas);
    else observer.observe(canvas);
  }
  $("scale-note").textContent = panelText.scaleNote(m.scale, m.stride);
  if (cursor) readout(cursor);
  else clearReadout();
}

function clearReadout() {
  const out = $("readout");
  out.replaceChildren(el("span", { className: "note", textContent: readoutText.hint }));
  delete out.dataset.values;
  $("enlarge").disabled = true;
  for (const mk of document.querySelectorAll(".marker")) mk.remove();
}

/**
 * Read the exact values at a pixel into the readout, and mark the pixel.
 * @param {{col: string, ch: number, y: number, x: number}} at
 */
function readout(at) {
  cursor = at;
  const { col, ch, y, x } = at;
  const m = model;
  const k = Math.min(ch, m.maps.pre_activation.channels - 1);
  const v = pixelValues(m.maps, m.weight, m.bias, y, x, k);
  const values = { col, row: ch, y: y * m.stride, x: x * m.stride, k, x_vector: v.x, w: v.w, b: v.b, pre_activation: v.pre, conv_relu: v.conv };
  if (ch < v.x.length) Object.assign(values, { input: v.x[ch], relu_only: v.relu[ch] });
  if (col.startsWith("truth:")) values.truth = valueAt(m.maps[col], 0, y, x);
  const where = readoutText.where(values.y, values.x, m.stride, titleOf(col), ch);
  const lines = [
    el("p", { className: "ro-where" }, el("strong", { textContent: where })),
    el(
      "p",
      { className: "ro-sum" },
      el("span", { className: "ro-key", textContent: readoutText.output(k) }),
      readoutText.sum(writtenSum(v.w, v.x, v.b, 8, v.pre), v.pre, v.conv),
    ),
    el("p", {}, el("span", { className: "ro-key", textContent: readoutText.input(v.x.length) }), readoutText.vector(v.x, m.names, VECTOR_SHOWN)),
    el("p", {}, el("span", { className: "ro-key", textContent: readoutText.relu }), readoutText.vector(v.relu, m.names, VECTOR_SHOWN)),
  ];
  if (values.truth !== undefined) lines.push(el("p", { textContent: readoutText.truth(titleOf(col), values.truth) }));
  const out = $("readout");
  out.replaceChildren(...lines);
  out.dataset.values = JSON.stringify(values);
  $("enlarge").disabled = false;
  mark(at);
}

function mark({ ch, y, x }) {
  for (const mk of document.querySelectorAll(".marker")) mk.remove();
  const all = model.maps.input.channels <= 16;
  const { height, width } = model;
  const cells = $("panels").querySelectorAll(all ? "canvas.cell" : `canvas.cell[data-ch="${ch}"]`);
  for (const canvas of cells) {
    const w = canvas.clientWidth / width;
    const h = canvas.clientHeight / height;
    const marker = el("span", { className: "marker" });
    marker.style.left = `${x * w - 1}px`;
    marker.style.top = `${y * h - 1}px`;
    marker.style.width = `${Math.max(w, 4) + 2}px`;
    marker.style.height = `${Math.max(h, 4) + 2}px`;
    canvas.parentElement.append(marker);
  }
}

function pixelOf(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * canvas.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * canvas.height);
  return [Math.min(Math.max(y, 0), canvas.height - 1), Math.min(Math.max(x, 0), canvas.width - 1)];
}

function atCanvas(canvas, y, x) {
  return { col: canvas.dataset.col, ch: Number(canvas.dataset.ch), y, x };
}

function rove(canvas) {
  const col = canvas.dataset.col;
  for (const c of $("panels").querySelectorAll(`canvas.cell[data-col="${CSS.escape(col)}"]`)) c.tabIndex = c === canvas ? 0 : -1;
  focusRow[col] = Number(canvas.dataset.ch);
}

function isCell(t) {
  return t instanceof HTMLCanvasElement && t.classList.contains("cell");
}

/**
 * Wire the panels' pointer and keyboard handling (once).
 * @param {HTMLElement} root
 * @param {Record<string, {title: string, short: string}>} definitions the server's panels
 */
export function setup(root, definitions) {
  panels = definitions;
  root.addEventListener("pointermove", (e) => {
    if (e.pointerType !== "mouse" || !isCell(e.target) || !model) return;
    const [y, x] = pixelOf(e.target, e);
    readout(atCanvas(e.target, y, x));
  });
  // A tap or click reads a value (enlarging has its own button), and moves the tab stop there.
  root.addEventListener("click", (e) => {
    if (!isCell(e.target) || !model) return;
    const [y, x] = pixelOf(e.target, e);
    rove(e.target);
    e.target.focus({ preventScroll: true });
    readout(atCanvas(e.target, y, x));
  });
  root.addEventListener("focusin", (e) => {
    if (!isCell(e.target) || !model) return;
    rove(e.target);
    const same = cursor && cursor.col === e.target.dataset.col && cursor.ch === Number(e.target.dataset.ch);
    readout(same ? cursor : atCanvas(e.target, cursor ? cursor.y : model.height >> 1, cursor ? cursor.x : model.width >> 1));
  });
  root.addEventListener("keydown", (e) => {
    const canvas = e.target;
    if (!isCell(canvas) || !model) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const at = cursor || atCanvas(canvas, model.height >> 1, model.width >> 1);
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      zoom(canvas);
    } else if (moves[e.key]) {
      e.preventDefault();
      const [dy, dx] = moves[e.key];
      readout({ ...atCanvas(canvas, 0, 0), y: Math.min(Math.max(at.y + dy, 0), model.height - 1), x: Math.min(Math.max(at.x + dx, 0), model.width - 1) });
    } else if (e.key === "PageDown" || e.key === "PageUp") {
      e.preventDefault();
      const next = Number(canvas.dataset.ch) + (e.key === "PageDown" ? 1 : -1);
      const target = root.querySelector(`canvas.cell[data-col="${CSS.escape(canvas.dataset.col)}"][data-ch="${next}"]`);
      if (target) {
        rove(target);
        cursor = { ...at, col: target.dataset.col, ch: next };
        target.focus();
      }
    }
  });
  // The enlarged map reads values like the small ones: the pixel's value here, everything in the readout.
  const big = $("zoom-canvas");
  const zoomRead = (e) => {
    const d = $("zoom").dataset;
    if (!model || !d.col || !model.maps[d.col]) return;
    const [y, x] = pixelOf(big, e);
    const ch = Number(d.ch);
    const v = valueAt(model.maps[d.col], d.col.startsWith("truth:") ? 0 : ch, y, x);
    const shown = d.col.startsWith("truth:") ? readoutText.yesNo(v) : fmt(v);
    $("zoom-value").textContent = zoomText.value(y * model.stride, x * model.stride, ch, nameIn(d.col, ch), shown);
    readout({ col: d.col, ch, y, x });
  };
  big.addEventListener("pointermove", (e) => {
    if (e.pointerType === "mouse") zoomRead(e);
  });
  big.addEventListener("click", zoomRead);
  // A click on the backdrop (outside the dialog's box) closes it.
  $("zoom").addEventListener("click", (e) => {
    const r = $("zoom").getBoundingClientRect();
    const outside = e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom;
    if (e.target === $("zoom") && outside) $("zoom").close();
  });
  $("enlarge").addEventListener("click", () => {
    if (!cursor) return;
    const canvas = root.querySelector(`canvas.cell[data-col="${CSS.escape(cursor.col)}"][data-ch="${cursor.ch}"]`);
    if (canvas) zoom(canvas);
  });
}

/**
 * Enlarge one channel in the dialog.
 * @param {HTMLCanvasElement} canvas
 */
export function zoom(canvas) {
  const col = canvas.dataset.col;
  const c = Number(canvas.dataset.ch);
  const hm = model.maps[col];
  if (!canvas.dataset.drawn) drawCell(canvas);
  const big = $("zoom-canvas");
  big.width = canvas.width;
  big.height = canvas.height;
  big.getContext("2d").drawImage(canvas, 0, 0);
  big.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
  const scale = scaleFor(hm.lo, hm.hi, model.scale, c);
  $("zoom-title").textContent = zoomText.title(titleOf(col), c, nameIn(col, c));
  $("zoom-range").textContent = zoomText.range(hm.lo[c], hm.hi[c], scale);
  // The server draws the same channel as its own picture; ground-truth masks are not panels.
  $("zoom").dataset.col = col;
  $("zoom").dataset.ch = String(c);
  $("zoom-png").hidden = col.startsWith("truth:");
  $("zoom-value").textContent = zoomText.hint;
  $("zoom").showModal();
}

/** Forget the cursor (a new scenario). */
export function resetCursor() {
  cursor = null;
}
