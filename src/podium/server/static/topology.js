// A workflow's topology as an inline SVG, from the nodes and edges GET /api/runs/ID/graph
// gives (the same walk that writes its Mermaid text). A layered layout, nested: every
// subgraph lays out its own children in layers (longest path over its edges, back edges
// left out), top to bottom, and is as big as they are; an edge between two subgraphs' insides
// counts in the innermost subgraph holding both. No library, no build step.

const NS = "http://www.w3.org/2000/svg";
const GAP_X = 28;
const GAP_Y = 50;
const PAD = 14;
const TITLE = 24;
const LEAF_H = 34;
const CHAR = 7.4; // px per character of a label, at the sheet's 13px
const LONG = 34; // characters a label shows before "…" (the whole in its tooltip)

function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) {
    if (kid !== null && kid !== undefined && kid !== false) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const short = (text) => (text.length > LONG ? `${text.slice(0, LONG - 1)}…` : text);

// The name of the agent a node draws: its label without the "(kind)" at its end.
export const nodeName = (label) => label.replace(/ \([^()]*\)$/, "");

// Layers of `kids` (in order) over the edges `pairs` between them: the longest path from a
// source, back edges (found depth first, in the kids' order) left out; within a layer, kids
// sorted once by where their predecessors sit. The rows, each kid's rank, the back edges.
function layers(kids, pairs) {
  const ids = kids.map((k) => k.id);
  const out = new Map(ids.map((id) => [id, []]));
  for (const [a, b] of pairs) out.get(a).push(b);
  const state = new Map();
  const forward = [];
  const back = new Set();
  const visit = (id) => {
    state.set(id, 1);
    for (const next of out.get(id)) {
      if (state.get(next) === 1) { back.add(`${id}>${next}`); continue; } // a way back
      forward.push([id, next]);
      if (!state.has(next)) visit(next);
    }
    state.set(id, 2);
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  const rank = new Map(ids.map((id) => [id, 0]));
  for (let pass = 0; pass < ids.length; pass++) { // a DAG settles within as many passes
    let moved = false;
    for (const [a, b] of forward) {
      if (rank.get(b) < rank.get(a) + 1) { rank.set(b, rank.get(a) + 1); moved = true; }
    }
    if (!moved) break;
  }
  const rows = [];
  for (const kid of kids) (rows[rank.get(kid.id)] ||= []).push(kid);
  const dense = rows.filter(Boolean);
  dense.forEach((row, r) => { for (const k of row) rank.set(k.id, r); });
  for (let r = 1; r < dense.length; r++) {
    const above = new Map(dense[r - 1].map((k, i) => [k.id, i]));
    const centre = (k) => {
      const from = forward.filter(([a, b]) => b === k.id && above.has(a)).map(([a]) => above.get(a));
      return from.length ? from.reduce((x, y) => x + y, 0) / from.length : Infinity;
    };
    const keyed = dense[r].map((k, i) => [centre(k), i, k]);
    keyed.sort((x, y) => (x[0] === y[0] ? x[1] - y[1] : x[0] === Infinity ? 1 : y[0] === Infinity ? -1 : x[0] - y[0]));
    dense[r] = keyed.map((x) => x[2]);
  }
  return { rows: dense, rank, back };
}

// Every node with its box (x, y, w, h, absolute; `depth` 0 at the top), and how each edge
// goes: `self`, `back` (against the layers: `span` layers up), or down, and `twoWay` when an
// edge goes the other way between the same two nodes.
export function layout(nodes, edges) {
  const byId = new Map(nodes.map((n) => [n.id, { ...n, kids: [] }]));
  const root = { id: "", kids: [], shape: "group", label: "" };
  for (const n of byId.values()) (byId.get(n.parent) || root).kids.push(n);
  const chain = (id) => {
    const out = [];
    for (let n = byId.get(id); n; n = n.parent ? byId.get(n.parent) : null) out.unshift(n.id);
    return out;
  };
  const local = new Map();
  const where = edges.map((e) => {
    if (!byId.has(e.source) || !byId.has(e.target) || e.source === e.target) return null;
    const a = chain(e.source);
    const b = chain(e.target);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    if (i === a.length || i === b.length) return null; // one holds the other
    const group = i === 0 ? "" : a[i - 1];
    if (!local.has(group)) local.set(group, []);
    local.get(group).push([a[i], b[i]]);
    return { group, from: a[i], to: b[i] };
  });
  const size = (n, depth) => {
    n.depth = depth;
    if (n.shape !== "group") {
      const text = short(n.label).length * CHAR;
      n.w = Math.max(n.shape === "circle" ? 80 : 70, text + (n.shape === "diamond" ? 44 : 24));
      n.h = n.shape === "diamond" ? LEAF_H + 10 : LEAF_H;
      return;
    }
    for (const kid of n.kids) size(kid, depth + 1);
    Object.assign(n, layers(n.kids, local.get(n.id) || []));
    // room on the right for the ways back that go round (over a layer or more, or a loop)
    const round = edges.filter((e, i) => {
      const at = where[i];
      if (e.source === e.target) return byId.get(e.source)?.parent === (n.id || null);
      return at && at.group === n.id && n.back.has(`${at.from}>${at.to}`) && n.rank.get(at.from) - n.rank.get(at.to) > 1;
    }).length;
    n.margin = round ? 30 + 10 * Math.min(round - 1, 3) : 0;
    const widths = n.rows.map((row) => row.reduce((w, k) => w + k.w, 0) + GAP_X * (row.length - 1));
    const heights = n.rows.map((row) => Math.max(...row.map((k) => k.h)));
    n.rowH = heights;
    const inner = heights.reduce((x, y) => x + y, 0) + GAP_Y * Math.max(0, heights.length - 1);
    const top = n === root ? 0 : TITLE;
    const pad = n === root ? 4 : PAD;
    n.w = Math.max(0, ...widths, n === root ? 0 : short(n.label).length * CHAR + 16) + 2 * pad + n.margin;
    n.h = inner + top + 2 * pad;
    n.top = top;
    n.pad = pad;
  };
  const place = (n, x, y) => {
    n.x = x; n.y = y;
    if (n.shape !== "group") return;
    let cy = y + n.top + n.pad;
    n.rows.forEach((row, r) => {
      const rowW = row.reduce((w, k) => w + k.w, 0) + GAP_X * (row.length - 1);
      let cx = x + (n.w - n.margin - rowW) / 2;
      for (const kid of row) { place(kid, cx, cy + (kid.shape === "group" ? 0 : Math.min((n.rowH[r] - kid.h) / 2, 12))); cx += kid.w + GAP_X; }
      cy += n.rowH[r] + GAP_Y;
    });
  };
  size(root, -1);
  place(root, 0, 0);
  const pairs = new Set(edges.map((e) => `${e.source}>${e.target}`));
  const ways = edges.map((e, i) => {
    const at = where[i];
    const twoWay = e.source !== e.target && pairs.has(`${e.target}>${e.source}`);
    if (e.source === e.target) return { self: true };
    if (!at) return { twoWay };
    const g = at.group ? byId.get(at.group) : root;
    const back = g.back.has(`${at.from}>${at.to}`);
    return { back, span: Math.abs(g.rank.get(at.from) - g.rank.get(at.to)), twoWay };
  });
  return { root, boxes: byId, ways };
}

// Where a cubic Bézier (x0, y0, ... x3, y3) is at t.
function at(p, t) {
  const u = 1 - t;
  const w = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
  return [w[0] * p[0] + w[1] * p[2] + w[2] * p[4] + w[3] * p[6], w[0] * p[1] + w[1] * p[3] + w[2] * p[5] + w[3] * p[7]];
}

// The path of an edge between two boxes, and where its label goes (x, y, anchor).
function route(a, b, way, nth) {
  const cx = (n) => n.x + n.w / 2;
  const cy = (n) => n.y + n.h / 2;
  const side = way.twoWay ? 12 : 0; // two ways between the same boxes: side by side
  let p;
  let label;
  if (way.self) {
    const x = a.x + a.w;
    p = [x, cy(a) - 7, x + 34, cy(a) - 24, x + 34, cy(a) + 24, x, cy(a) + 7];
    label = [x + 30, cy(a) + 4, "start"];
  } else if (way.back && way.span > 1) { // a way back over layers: round the right side
    const x = Math.max(a.x + a.w, b.x + b.w) + 22 + 10 * nth;
    p = [a.x + a.w, cy(a), x, cy(a), x, cy(b), b.x + b.w, cy(b)];
    label = [x - 2, (cy(a) + cy(b)) / 2 + 4, "start"];
  } else if (way.back) { // one layer back: up, beside the way down
    const [x1, y1, x2, y2] = [cx(a) + side, a.y, cx(b) + side, b.y + b.h];
    const d = Math.max((y1 - y2) / 2, 12);
    p = [x1, y1, x1, y1 - d, x2, y2 + d, x2, y2];
    const [lx, ly] = at(p, 0.5);
    label = [lx + 6, ly + 4, "start"];
  } else if (b.y >= a.y + a.h - 1) { // down: from the bottom to the top
    const [x1, y1, x2, y2] = [cx(a) - side, a.y + a.h, cx(b) - side, b.y];
    const d = Math.max((y2 - y1) / 2, 12);
    p = [x1, y1, x1, y1 + d, x2, y2 - d, x2, y2];
    const [lx, ly] = at(p, side ? 0.5 : 0.62); // nearer the target, where a fan spreads
    label = side ? [lx - 6, ly + 4, "end"] : [lx, ly + 4, "middle"];
  } else if (b.y + b.h <= a.y + 1) { // up, between subgraphs: round the right side
    const x = Math.max(a.x + a.w, b.x + b.w) + 22 + 10 * nth;
    p = [a.x + a.w, cy(a), x, cy(a), x, cy(b), b.x + b.w, cy(b)];
    label = [x - 2, (cy(a) + cy(b)) / 2 + 4, "start"];
  } else if (b.x >= a.x + a.w) { // beside, to the right
    p = [a.x + a.w, cy(a), a.x + a.w + 12, cy(a), b.x - 12, cy(b), b.x, cy(b)];
    label = [...at(p, 0.5), "middle"];
  } else { // beside, to the left (or overlapping): under both
    const y = Math.max(a.y + a.h, b.y + b.h) + 18 + 8 * nth;
    p = [cx(a), a.y + a.h, cx(a), y, cx(b), y, cx(b), b.y + b.h];
    label = [...at(p, 0.5), "middle"];
  }
  return { d: `M${p[0]},${p[1]} C${p[2]},${p[3]} ${p[4]},${p[5]} ${p[6]},${p[7]}`, label };
}

function shapeOf(n) {
  const { x, y, w, h } = n;
  if (n.shape === "diamond") {
    return s("polygon", { class: "shape", points: `${x + w / 2},${y} ${x + w},${y + h / 2} ${x + w / 2},${y + h} ${x},${y + h / 2}` });
  }
  if (n.shape === "circle") return s("ellipse", { class: "shape", cx: x + w / 2, cy: y + h / 2, rx: w / 2, ry: h / 2 });
  const rx = n.shape === "stadium" ? h / 2 : 5;
  return s("rect", { class: "shape", x, y, width: w, height: h, rx });
}

// The SVG of a topology. `state(name)` gives the status of the agent named so in the run
// (colours its node) and whether it is the step a replay found different; `pick(name)` is
// called when a node is chosen (click, Enter or Space).
export function topology(graph, { state = () => ({}), pick = () => {} } = {}) {
  const { root, boxes, ways } = layout(graph.nodes, graph.edges);
  const width = Math.ceil(root.w + 60); // room for the ways back on the right
  const height = Math.ceil(root.h + 24);
  const said = graph.edges.map((e) => `${boxes.get(e.source)?.label} to ${boxes.get(e.target)?.label}${e.label ? ` (${e.label})` : ""}`);
  const svg = s("svg", {
    class: "topology", role: "group", width, height, viewBox: `-4 -4 ${width} ${height}`,
    "aria-label": `Topology of ${graph.agent}: ${graph.nodes.length} nodes, ${graph.edges.length} edges`,
  },
  s("desc", {}, said.join("; ")),
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
  const all = [...boxes.values()];
  const groups = all.filter((n) => n.shape === "group").sort((a, b) => a.depth - b.depth);
  const focusable = (n, kids) => {
    const name = nodeName(n.label);
    const st = state(name) || {};
    const cls = ["node", n.shape === "group" ? "group" : `shape-${n.shape}`, st.status ? `s-${st.status}` : "", st.differs ? "differs" : ""].filter(Boolean).join(" ");
    const label = `${n.label}${st.status ? `, ${st.status}` : ""}${st.differs ? ", differs on replay" : ""}`;
    return s("g", {
      class: cls, tabindex: 0, role: "button", "aria-label": label, "data-node": n.id, "data-name": name,
    }, s("title", {}, label), kids);
  };
  for (const g of groups) {
    const el = focusable(g, [
      s("rect", { class: "frame", x: g.x, y: g.y, width: g.w, height: g.h, rx: 8 }),
      s("text", { class: "title", x: g.x + 10, y: g.y + 17 }, short(g.label)),
    ]);
    svg.append(el);
  }
  const seen = new Map();
  graph.edges.forEach((e, i) => {
    const a = boxes.get(e.source);
    const b = boxes.get(e.target);
    if (!a || !b) return;
    const pair = `${e.source}>${e.target}`;
    const nth = seen.get(pair) || 0;
    seen.set(pair, nth + 1);
    const { d, label } = route(a, b, ways[i], nth);
    svg.append(s("path", { class: `edge${e.dotted ? " dotted" : ""}`, d, "marker-end": "url(#arrow)", "data-from": e.source, "data-to": e.target }));
    if (e.label) svg.append(s("text", { class: "edge-label", x: label[0], y: label[1], "text-anchor": label[2] }, short(e.label)));
  });
  for (const n of all.filter((x) => x.shape !== "group")) {
    svg.append(focusable(n, [
      shapeOf(n),
      s("text", { class: "label", x: n.x + n.w / 2, y: n.y + n.h / 2 + 4, "text-anchor": "middle" }, short(n.label)),
    ]));
  }
  const choose = (el) => {
    for (const other of svg.querySelectorAll(".node.picked")) other.classList.remove("picked");
    el.classList.add("picked");
    pick(el.dataset.name);
  };
  svg.addEventListener("click", (ev) => { const el = ev.target.closest(".node"); if (el) choose(el); });
  svg.addEventListener("keydown", (ev) => {
    const el = ev.target.closest?.(".node");
    if (el && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); choose(el); }
  });
  // the edges in and out of the node with the focus stand out
  const lit = (id, on) => {
    for (const p of svg.querySelectorAll("path.edge")) {
      if (p.dataset.from === id || p.dataset.to === id) p.classList.toggle("lit", on);
    }
  };
  svg.addEventListener("focusin", (ev) => { const el = ev.target.closest?.(".node"); if (el) lit(el.dataset.node, true); });
  svg.addEventListener("focusout", (ev) => { const el = ev.target.closest?.(".node"); if (el) lit(el.dataset.node, false); });
  return svg;
}
