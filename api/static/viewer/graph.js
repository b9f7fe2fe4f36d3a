// The verification graph as an SVG diagram: layered left to right, the run's path highlighted,
// per-node counts and durations; on the verify page its nodes light up as events arrive.

import { duration, plural } from "./format.js";
import { s, uid } from "./dom.js";

const START = "__start__";
const END = "__end__";
const BOX_W = 112;
const BOX_H = 50;
const COL_W = 150;
const ROW_H = 74;
const PAD = 18;
const DOT_R = 7;

function layers(nodes, edges) {
  // Longest distance from the start: a node sits one column right of its furthest predecessor.
  const layer = new Map(nodes.map((n) => [n, 0]));
  for (let i = 0; i < nodes.length; i += 1) {
    let changed = false;
    for (const e of edges) {
      if (e.target === START || e.source === e.target) continue;
      const want = (layer.get(e.source) ?? 0) + 1;
      if (want > (layer.get(e.target) ?? 0)) {
        layer.set(e.target, want);
        changed = true;
      }
    }
    if (!changed) break; // a cycle stops after |nodes| passes instead of looping forever
  }
  return layer;
}

function edgePath(a, b, skip) {
  if (skip) {
    // An edge that jumps columns runs below the row, from the bottom of one box to the other's.
    const y0 = a.y + a.h / 2;
    const y1 = b.y + b.h / 2;
    const dip = Math.max(y0, y1) + 34;
    return `M ${a.x} ${y0} C ${a.x} ${dip}, ${b.x} ${dip}, ${b.x} ${y1 + 2}`;
  }
  const x0 = a.x + a.w / 2;
  const x1 = b.x - b.w / 2 - 2;
  const mid = (x0 + x1) / 2;
  return `M ${x0} ${a.y} C ${mid} ${a.y}, ${mid} ${b.y}, ${x1} ${b.y}`;
}

/** Pairs of consecutive nodes of a path, with start and end added where the run reached them. */
export function pathPairs(path, finished) {
  const full = [START, ...path];
  if (finished) full.push(END);
  const pairs = new Set();
  for (let i = 1; i < full.length; i += 1) pairs.add(`${full[i - 1]}\u0000${full[i]}`);
  return pairs;
}

/**
 * Draw the diagram. Returns {el, setMeta(node, text, title), mark(node, cls, on), lightPath(path, finished)}.
 * `label` names the figure for assistive technology.
 */
export function drawGraph(diagram, { label = "Verification graph" } = {}) {
  const edges = diagram.edges || [];
  const named = [...(diagram.nodes || [])];
  const all = [];
  if (edges.some((e) => e.source === START)) all.push(START);
  all.push(...named);
  if (edges.some((e) => e.target === END)) all.push(END);

  const layer = layers(all, edges);
  const columns = new Map();
  for (const n of all) {
    const l = layer.get(n) ?? 0;
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(n);
  }
  const maxCol = Math.max(0, ...columns.keys());
  const maxRows = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const width = PAD * 2 + maxCol * COL_W + BOX_W;
  const height = PAD * 2 + maxRows * ROW_H + 30;
  const midY = PAD + (maxRows * ROW_H) / 2;

  const pos = new Map();
  for (const [l, col] of columns) {
    col.forEach((n, i) => {
      const x = PAD + BOX_W / 2 + l * COL_W;
      const y = midY + (i - (col.length - 1) / 2) * ROW_H;
      const dot = n === START || n === END;
      pos.set(n, { x, y, w: dot ? DOT_R * 2 : BOX_W, h: dot ? DOT_R * 2 : BOX_H });
    });
  }

  const arrow = uid("arrow");
  const arrowOn = uid("arrow-on");
  const marker = (id, cls) =>
    s(
      "marker",
      { id, class: cls, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z" }),
    );

  const edgeEls = new Map();
  const edgeLayer = s("g", { class: "gedges" });
  for (const e of edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    const skip = (layer.get(e.target) ?? 0) - (layer.get(e.source) ?? 0) > 1;
    const el = s("path", {
      class: ["gedge", e.conditional && "conditional"],
      d: edgePath(a, b, skip),
      "marker-end": `url(#${arrow})`,
      dataset: { source: e.source, target: e.target },
    });
    edgeEls.set(`${e.source}\u0000${e.target}`, el);
    edgeLayer.appendChild(el);
  }

  const nodeEls = new Map();
  const metaEls = new Map();
  const titleEls = new Map();
  const nodeLayer = s("g", { class: "gnodes" });
  for (const n of all) {
    const p = pos.get(n);
    if (n === START || n === END) {
      const title = s("title", { text: n === START ? "start" : "end" });
      const g = s("g", { class: ["gnode", "gterminal"], dataset: { node: n } }, title, s("circle", { cx: p.x, cy: p.y, r: DOT_R }));
      nodeEls.set(n, g);
      nodeLayer.appendChild(g);
      continue;
    }
    const title = s("title", { text: n });
    const meta = s("text", { class: "gnode-meta", x: p.x, y: p.y + 14, "text-anchor": "middle" }, "");
    const g = s(
      "g",
      { class: "gnode", dataset: { node: n } },
      title,
      s("rect", { x: p.x - p.w / 2, y: p.y - p.h / 2, width: p.w, height: p.h, rx: 9, ry: 9 }),
      s("text", { class: "gnode-name", x: p.x, y: p.y - 3, "text-anchor": "middle" }, n),
      meta,
    );
    nodeEls.set(n, g);
    metaEls.set(n, meta);
    titleEls.set(n, title);
    nodeLayer.appendChild(g);
  }

  const svg = s(
    "svg",
    {
      class: "graph",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": label,
      preserveAspectRatio: "xMidYMid meet",
    },
    s("defs", null, marker(arrow, "garrow"), marker(arrowOn, "garrow on-path")),
    edgeLayer,
    nodeLayer,
  );

  return {
    el: svg,
    nodes: named,
    /** Set the line under a node's name and its tooltip. */
    setMeta(node, text, title) {
      const meta = metaEls.get(node);
      if (meta) meta.textContent = text;
      const t = titleEls.get(node);
      if (t && title) t.textContent = title;
    },
    /** Add or remove a state class ("done", "running", "on-path", "skipped") on a node. */
    mark(node, cls, on = true) {
      const g = nodeEls.get(node);
      if (g) g.classList.toggle(cls, on);
      return g;
    },
    /** The nodes an edge leads to from `node` (the end left out). */
    edgesFrom(node) {
      return edges.filter((e) => e.source === node && e.target !== END).map((e) => e.target);
    },
    /** Highlight the edges between consecutive nodes of `path`, and the nodes themselves. */
    lightPath(path, finished) {
      const pairs = pathPairs(path, finished);
      for (const [key, el] of edgeEls) {
        const on = pairs.has(key);
        el.classList.toggle("on-path", on);
        el.setAttribute("marker-end", `url(#${on ? arrowOn : arrow})`);
      }
      const visited = new Set([START, ...path]);
      if (finished) visited.add(END);
      for (const [n, g] of nodeEls) g.classList.toggle("on-path", visited.has(n));
    },
  };
}

/** Per-node run counts and total durations of a trace's events. */
export function nodeStats(events) {
  const stats = new Map();
  for (const e of events) {
    const st = stats.get(e.node) || { count: 0, ms: 0, errors: 0 };
    st.count += 1;
    st.ms += Number(e.duration_ms) || 0;
    if (e.error) st.errors += 1;
    stats.set(e.node, st);
  }
  return stats;
}

/** The diagram of a finished run: its path lit, each node's runs and time. */
export function drawRunGraph(diagram, trace) {
  const path = trace.path || [];
  const graph = drawGraph(diagram, { label: `Graph of this run: ${["start", ...path].join(" → ")}` });
  const stats = nodeStats(trace.events || []);
  const finished = path[path.length - 1] === "report";
  graph.lightPath(path, finished);
  for (const n of graph.nodes) {
    const st = stats.get(n);
    if (!st) {
      graph.mark(n, "skipped");
      graph.setMeta(n, "not run", `${n}: not run`);
      continue;
    }
    const runs = st.count > 1 ? `×${st.count} · ` : "";
    const errs = st.errors ? ` · ${plural(st.errors, "error")}` : "";
    graph.setMeta(n, `${runs}${duration(st.ms)}`, `${n}: ${plural(st.count, "run")}, ${duration(st.ms)} in all${errs}`);
    if (st.errors) graph.mark(n, "has-error");
  }
  return graph;
}
