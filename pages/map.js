// Vendiscope's map: every point of a 2-D layout drawn into one canvas (typed-array raster: a
// million points draw in about a quarter second without WebGL), with pan and wheel zoom, box and
// lasso selections, clicks (also in lasso mode) and hover cards. Selections travel to the server
// as shapes in data coordinates; the server computes membership over every item.
//
// Why hand-written rather than a WebGL library: measured by benchmarks/map_render.py in headless
// Chromium (2 cores, software WebGL) at 1M points: this canvas 254 ms first draw, 251 ms per zoom,
// 10 MB of points sent once (pages/points.js; a rerun for a lasso or a hover card sends this element's
// few hundred bytes and redraws only what changed); plotly Scattergl 16x / 11x slower with 11.4 MB of JSON; pydeck
// (deck.gl) 171.5 MB of JSON per rerun and 17 s to encode it; datashader 0.7-0.8 s of server work
// on every pan or zoom; Embedding Atlas 0.26 needs WebGPU with shader-f16 and draws nothing without it.
const DPR = Math.min(window.devicePixelRatio || 1, 2);
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
  "#b5de2b", "#fde725"];

function rgba(hex, alpha = 255) {
  const v = parseInt(hex.slice(1), 16);
  return ((alpha << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;  // ABGR in memory
}

function lerpHex(stops, t) {
  const f = Math.min(stops.length - 1.0001, Math.max(0, t * (stops.length - 1)));
  const i = Math.floor(f), u = f - i;
  const a = parseInt(stops[i].slice(1), 16), b = parseInt(stops[i + 1].slice(1), 16);
  const mix = (s) => Math.round(((a >> s) & 255) * (1 - u) + ((b >> s) & 255) * u);
  return "#" + ((mix(16) << 16) | (mix(8) << 8) | mix(0)).toString(16).padStart(6, "0");
}

function insidePolygon(x, y, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < xi + ((y - yi) * (xj - xi)) / (yj - yi)) inside = !inside;
  }
  return inside;
}

function simplify(points, maxPoints) {
  if (points.length <= maxPoints) return points;
  const step = points.length / maxPoints;
  const out = [];
  for (let k = 0; k < maxPoints; k++) out.push(points[Math.floor(k * step)]);
  return out;
}

function build(root) {
  root.innerHTML = `
    <div class="vs-toolbar">
      <button data-mode="lasso" title="Draw a lasso (a click still opens an item)">Lasso</button>
      <button data-mode="box" title="Draw a box">Box</button>
      <button data-mode="pan" title="Drag to pan">Pan</button>
      <button data-action="reset" title="Show every point">Reset view</button>
      <button data-action="clear" title="Clear the selection (or double-click the map)">Clear selection</button>
      <span class="vs-count"></span>
    </div>
    <div class="vs-stage"><canvas class="vs-canvas"></canvas><div class="vs-tip"></div></div>
    <div class="vs-legend"></div>`;
  return {
    canvas: root.querySelector(".vs-canvas"), tip: root.querySelector(".vs-tip"),
    legend: root.querySelector(".vs-legend"), count: root.querySelector(".vs-count"),
    buttons: root.querySelectorAll(".vs-toolbar button"),
  };
}

// decoded points, by digest, from the points element (points.js) drawn beside this one
const REGISTRY = globalThis.__vendiscopePoints
  || (globalThis.__vendiscopePoints = { tables: new Map(), waiting: new Map() });

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  let root = parentElement.querySelector(".vs-map");
  if (!root) {
    root = document.createElement("div");
    root.className = "vs-map";
    parentElement.appendChild(root);
  }
  const s = root.__state || (root.__state = { mode: "lasso", view: null, dataKey: null, hover: -1, drag: null });
  if (!s.el) {
    s.el = build(root);
    attach(root, s);
  }
  s.setStateValue = setStateValue;
  s.setTriggerValue = setTriggerValue;
  s.data = data;
  update(s);
  const mine = s.wake;
  return () => { if (s.wake === mine) unwait(s); };  // a late cleanup of an earlier call leaves a newer wait
}

function unwait(s) {
  for (const [digest, waiting] of REGISTRY.waiting) {
    const rest = waiting.filter((wake) => wake !== s.wake);
    if (rest.length) REGISTRY.waiting.set(digest, rest); else REGISTRY.waiting.delete(digest);
  }
}

function update(s) {
  const data = s.data;
  const entry = REGISTRY.tables.get(data.points);
  // the points this map already draws need no registry entry (it may have been let go meanwhile)
  const table = entry ? entry.table : (s.table && s.table.digest === data.points ? s.table : null);
  if (!table) {  // the points element has not been drawn yet: draw when it has
    unwait(s);
    s.wake = () => update(s);
    REGISTRY.waiting.set(data.points, [...(REGISTRY.waiting.get(data.points) || []), s.wake]);
    s.el.count.textContent = "loading the points…";
    return;
  }
  // a new hover card alone redraws only the card: a million points take a quarter second to draw
  const style = JSON.stringify([data.mode, data.names, data.palette, data.vmin, data.vmax, data.title, data.height]);
  let redraw = s.table !== table || s.style !== style;
  s.table = table;
  s.style = style;
  s.xs = table.xs;
  s.ys = table.ys;
  s.cs = table.cs;
  s.texts = table.texts;
  s.n = table.n;
  s.mode_colour = data.mode;
  s.names = data.names || [];
  s.title = data.title || "";
  s.card = data.hover_card || null;
  s.height = data.height || 560;
  s.palette = (data.palette || []).map((c) => rgba(c));
  s.dimPalette = (data.palette || []).map((c) => rgba(c, 40));
  if (data.mode === "scale") {
    s.lut = Array.from({ length: 256 }, (_, k) => rgba(lerpHex(VIRIDIS, k / 255)));
    s.dimLut = Array.from({ length: 256 }, (_, k) => rgba(lerpHex(VIRIDIS, k / 255), 40));
    s.vmin = data.vmin; s.vmax = data.vmax;
  }
  if (s.dataKey !== data.view_key) {  // another dataset or layout: show all of it
    s.dataKey = data.view_key;
    s.view = fit(s);
    redraw = true;
  }
  const shape = data.selection || null;
  if (redraw || JSON.stringify(shape) !== JSON.stringify(s.shape || null)) {
    s.shape = shape;
    s.mask = shape ? maskOf(s, shape) : null;
    redraw = true;
  }
  if (redraw) {
    drawLegend(s);
    render(s);
  } else {
    showCount(s);
  }
  showTip(s);
}

function fit(s) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < s.n; i++) {
    const x = s.xs[i], y = s.ys[i];
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!isFinite(x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }
  const px = (x1 - x0) * 0.04 || 1, py = (y1 - y0) * 0.04 || 1;
  return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
}

function maskOf(s, shape) {
  const mask = new Uint8Array(s.n);
  let count = 0;
  if (shape.box) {
    const [[ax, ay], [bx, by]] = shape.box;
    const x0 = Math.min(ax, bx), x1 = Math.max(ax, bx), y0 = Math.min(ay, by), y1 = Math.max(ay, by);
    for (let i = 0; i < s.n; i++) {
      if (s.xs[i] >= x0 && s.xs[i] <= x1 && s.ys[i] >= y0 && s.ys[i] <= y1) { mask[i] = 1; count++; }
    }
  } else if (shape.lasso) {
    const poly = shape.lasso;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const [x, y] of poly) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    for (let i = 0; i < s.n; i++) {
      const x = s.xs[i], y = s.ys[i];
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && insidePolygon(x, y, poly)) { mask[i] = 1; count++; }
    }
  }
  s.selected = count;
  return mask;
}

function toScreen(s, x, y) {
  const c = s.el.canvas, v = s.view;
  return [((x - v.x0) / (v.x1 - v.x0)) * c.width, ((v.y1 - y) / (v.y1 - v.y0)) * c.height];
}

function toData(s, px, py) {
  const c = s.el.canvas, v = s.view;
  return [v.x0 + (px / c.width) * (v.x1 - v.x0), v.y1 - (py / c.height) * (v.y1 - v.y0)];
}

function colourOf(s, i, dim) {
  if (s.mode_colour === "scale") {
    const v = s.cs[i];
    if (!(v === v)) return dim ? 0x28b1a59a : 0xffb1a59a;  // NaN: grey
    const t = s.vmax > s.vmin ? (v - s.vmin) / (s.vmax - s.vmin) : 0.5;
    const k = Math.max(0, Math.min(255, Math.round(t * 255)));
    return dim ? s.dimLut[k] : s.lut[k];
  }
  const p = dim ? s.dimPalette : s.palette;
  return p[s.cs[i] % p.length];
}

function render(s) {
  const c = s.el.canvas;
  const width = Math.max(200, Math.floor(c.parentElement.clientWidth || 800));
  c.style.width = width + "px";
  c.style.height = s.height + "px";
  c.width = Math.floor(width * DPR);
  c.height = Math.floor(s.height * DPR);
  const ctx = c.getContext("2d");
  const W = c.width, H = c.height;
  const img = ctx.createImageData(W, H);
  const buf = new Uint32Array(img.data.buffer);
  buf.fill(0xffffffff);
  const r = Math.max(1, Math.round((s.n > 300000 ? 1 : s.n > 30000 ? 1.5 : 2.5) * DPR));
  const v = s.view, sx = W / (v.x1 - v.x0), sy = H / (v.y1 - v.y0);
  // a grid of screen cells for hover picking
  const cell = 16 * DPR, gw = Math.ceil(W / cell) + 1, gh = Math.ceil(H / cell) + 1;
  const counts = new Int32Array(gw * gh + 1);
  const px = new Int32Array(s.n), py = new Int32Array(s.n);
  const mask = s.mask;
  for (let pass = 0; pass < 2; pass++) {  // unselected first, so a selection is drawn on top
    for (let i = 0; i < s.n; i++) {
      const chosen = mask ? mask[i] === 1 : true;
      if (mask && (pass === 0) === chosen) continue;
      if (!mask && pass === 1) break;
      const x = Math.round((s.xs[i] - v.x0) * sx), y = Math.round((v.y1 - s.ys[i]) * sy);
      px[i] = x; py[i] = y;
      if (x < -r || y < -r || x >= W + r || y >= H + r) { px[i] = -1e9; continue; }
      const col = colourOf(s, i, mask ? !chosen : false);
      for (let dy = -r + 1; dy < r; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= H) continue;
        const row = yy * W;
        for (let dx = -r + 1; dx < r; dx++) {
          const xx = x + dx;
          if (xx >= 0 && xx < W) buf[row + xx] = col;
        }
      }
      counts[cellOf(x, y, cell, gw, gh) + 1]++;
    }
  }
  ctx.putImageData(img, 0, 0);
  s.base = img;
  // counting sort of visible points into cells
  for (let k = 1; k < counts.length; k++) counts[k] += counts[k - 1];
  const items = new Int32Array(counts[counts.length - 1]);
  const fill = counts.slice();
  for (let i = 0; i < s.n; i++) {
    if (px[i] === -1e9) continue;
    items[fill[cellOf(px[i], py[i], cell, gw, gh)]++] = i;
  }
  s.grid = { cell, gw, gh, starts: counts, items, px, py };
  drawShape(s, ctx);
  showCount(s);
}

function showCount(s) {
  s.el.count.textContent = s.mask ? `${s.selected.toLocaleString()} selected of ${s.n.toLocaleString()}`
    : `${s.n.toLocaleString()} points`;
}

function cellOf(x, y, cell, gw, gh) {
  const cx = Math.min(gw - 1, Math.max(0, Math.floor(x / cell)));
  const cy = Math.min(gh - 1, Math.max(0, Math.floor(y / cell)));
  return cy * gw + cx;
}

function drawShape(s, ctx, live) {
  const shape = live || s.shape;
  if (!shape) return;
  ctx.save();
  ctx.strokeStyle = "#333";
  ctx.lineWidth = 1.5 * DPR;
  ctx.setLineDash([6 * DPR, 4 * DPR]);
  ctx.beginPath();
  if (shape.box) {
    const [a, b] = shape.box.map(([x, y]) => toScreen(s, x, y));
    ctx.rect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
  } else if (shape.lasso && shape.lasso.length) {
    shape.lasso.forEach(([x, y], k) => {
      const [u, w] = toScreen(s, x, y);
      if (k === 0) ctx.moveTo(u, w); else ctx.lineTo(u, w);
    });
    ctx.closePath();
  }
  ctx.stroke();
  ctx.restore();
}

function nearest(s, mx, my, radius) {
  const g = s.grid;
  if (!g) return -1;
  const cx = Math.floor(mx / g.cell), cy = Math.floor(my / g.cell);
  let best = -1, bestD = radius * radius;
  for (let gy = cy - 1; gy <= cy + 1; gy++) {
    for (let gx = cx - 1; gx <= cx + 1; gx++) {
      if (gx < 0 || gy < 0 || gx >= g.gw || gy >= g.gh) continue;
      const k = gy * g.gw + gx;
      for (let t = g.starts[k]; t < g.starts[k + 1]; t++) {
        const i = g.items[t], dx = g.px[i] - mx, dy = g.py[i] - my, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

function drawLegend(s) {
  const el = s.el.legend;
  if (s.mode_colour === "scale") {
    el.innerHTML = `<span>${s.title}</span> <span>${Number(s.vmin).toPrecision(3)}</span>
      <span class="vs-ramp" style="background:linear-gradient(90deg,${VIRIDIS.join(",")})"></span>
      <span>${Number(s.vmax).toPrecision(3)}</span>`;
    return;
  }
  const shown = s.names.slice(0, 24).map((name) => `<span class="vs-key"><i></i>${escape(name)}</span>`);
  el.innerHTML = `<span>${escape(s.title)}</span> ` + shown.join(" ") + (s.names.length > 24 ? " …" : "");
  el.querySelectorAll("i").forEach((i, k) => {
    const p = s.palette[k % s.palette.length];
    i.style.background = `rgb(${p & 255},${(p >> 8) & 255},${(p >> 16) & 255})`;
  });
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}

function showTip(s) {
  const tip = s.el.tip;
  const i = s.hover;
  if (i < 0 || i >= s.n) { tip.style.display = "none"; return; }
  const text = s.texts ? s.texts.get(i) : "";
  let html = `<div class="vs-tip-text">${escape(text || "item " + i)}</div>`;
  if (s.card && s.card.index === i) {
    if (s.card.img) html = `<img src="${s.card.img}" alt="">` + html;
    if (s.card.text) html += `<div class="vs-tip-more">${escape(s.card.text)}</div>`;
  }
  tip.innerHTML = html;
  tip.style.display = "block";
  tip.style.left = `${s.tipX + 14}px`;
  tip.style.top = `${s.tipY + 14}px`;
}

function attach(root, s) {
  const c = s.el.canvas;
  s.el.buttons.forEach((b) => {
    b.addEventListener("click", () => {
      if (b.dataset.mode) {
        s.mode = b.dataset.mode;
        s.el.buttons.forEach((x) => x.classList.toggle("on", x.dataset.mode === s.mode));
        c.style.cursor = s.mode === "pan" ? "grab" : "crosshair";
      } else if (b.dataset.action === "reset") {
        s.view = fit(s);
        render(s);
      } else if (b.dataset.action === "clear") {
        s.shape = null; s.mask = null; render(s);
        s.setStateValue("selection", null);
      }
    });
  });
  s.el.buttons[0].classList.add("on");
  c.style.cursor = "crosshair";
  const pos = (e) => {
    const r = c.getBoundingClientRect();
    return [(e.clientX - r.left) * DPR, (e.clientY - r.top) * DPR, e.clientX - r.left, e.clientY - r.top];
  };
  c.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    const [mx, my] = pos(e);
    // x0, y0: where the press began, so that a slow pan (many small steps) is not taken for a click
    s.drag = { x: mx, y: my, x0: mx, y0: my, moved: 0, path: [toData(s, mx, my)], view: { ...s.view } };
    s.el.tip.style.display = "none";
    e.preventDefault();
  });
  window.addEventListener("mousemove", (e) => {
    const [mx, my] = pos(e);
    const d = s.drag;
    if (d) {
      d.moved = Math.max(d.moved, Math.hypot(mx - d.x0, my - d.y0));
      const ctx = c.getContext("2d");
      if (s.mode === "pan") {
        const [ax, ay] = toData(s, d.x, d.y), [bx, by] = toData(s, mx, my);
        s.view = { x0: s.view.x0 + ax - bx, x1: s.view.x1 + ax - bx, y0: s.view.y0 + ay - by, y1: s.view.y1 + ay - by };
        d.x = mx; d.y = my;
        if (!s.frame) s.frame = requestAnimationFrame(() => { s.frame = null; render(s); });
      } else if (d.moved > 3 * DPR) {
        d.path.push(toData(s, mx, my));
        ctx.putImageData(s.base, 0, 0);
        const live = s.mode === "box" ? { box: [d.path[0], d.path[d.path.length - 1]] } : { lasso: d.path };
        drawShape(s, ctx, live);
      }
      return;
    }
  });
  // hover on the canvas itself (events from inside the component's shadow root reach window
  // retargeted to its host, so window cannot tell the canvas apart)
  c.addEventListener("mousemove", (e) => {
    if (s.drag) return;
    const [mx, my, cssX, cssY] = pos(e);
    const i = nearest(s, mx, my, 8 * DPR);
    s.tipX = cssX; s.tipY = cssY;
    if (i !== s.hover) {
      s.hover = i;
      showTip(s);
      clearTimeout(s.hoverTimer);
      if (i >= 0) s.hoverTimer = setTimeout(() => s.setStateValue("hover", i), 350);  // the server sends a card
    }
  });
  window.addEventListener("mouseup", (e) => {
    const d = s.drag;
    if (!d) return;
    s.drag = null;
    const [mx, my] = pos(e);
    if (d.moved <= 3 * DPR) {  // a click, whatever the drag mode (pan included): open the nearest item
      const i = nearest(s, mx, my, 10 * DPR);
      if (i >= 0) s.setTriggerValue("click", i);
      return;
    }
    if (s.mode === "pan") { render(s); return; }
    d.path.push(toData(s, mx, my));
    const shape = s.mode === "box" ? { box: [d.path[0], d.path[d.path.length - 1]] } : { lasso: simplify(d.path, 64) };
    s.shape = shape;
    s.mask = maskOf(s, shape);
    render(s);
    s.setStateValue("selection", shape);
  });
  c.addEventListener("dblclick", () => {
    s.shape = null; s.mask = null; render(s);
    s.setStateValue("selection", null);
  });
  c.addEventListener("mouseleave", () => { s.hover = -1; showTip(s); });
  c.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [mx, my] = pos(e);
    const [x, y] = toData(s, mx, my);
    const k = Math.exp(e.deltaY * 0.0015);
    const v = s.view;
    s.view = { x0: x - (x - v.x0) * k, x1: x + (v.x1 - x) * k, y0: y - (y - v.y0) * k, y1: y + (v.y1 - y) * k };
    if (!s.frame) s.frame = requestAnimationFrame(() => { s.frame = null; render(s); });
  }, { passive: false });
}
