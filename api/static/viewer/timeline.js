// The waterfall: one row per node run, placed by its start and length relative to the run's start.

import { duration, epochMs } from "./format.js";
import { h } from "./dom.js";

function pct(v) {
  return `${Math.max(0, Math.min(100, v)).toFixed(3)}%`;
}

/** The events' start offsets and the run's span, in milliseconds. */
export function timing(trace) {
  const t0 = epochMs(trace.header.created_at);
  let span = Number(trace.header.duration_ms) || 0;
  const offsets = (trace.events || []).map((e) => {
    const off = Math.max(0, epochMs(e.started_at) - t0);
    span = Math.max(span, off + (Number(e.duration_ms) || 0));
    return off;
  });
  return { offsets, span: Math.max(span, 0.001) };
}

/**
 * The timeline element. `onSelect(index)` is called when a row's label is pressed (to open that
 * node run's panel).
 */
export function drawTimeline(trace, { onSelect } = {}) {
  const events = trace.events || [];
  const { offsets, span } = timing(trace);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { class: "tl-tick", vars: { "--at": pct(f * 100) } }, duration(f * span)),
  );
  const axis = h("div", { class: "tl-axis", "aria-hidden": "true" }, h("span", { class: "tl-label" }), h("div", { class: "tl-scale" }, ticks));

  const rows = h("ol", { class: "tl-rows" });
  const items = events.map((e, i) => {
    const start = (offsets[i] / span) * 100;
    const width = ((Number(e.duration_ms) || 0) / span) * 100;
    const name = e.claim_id ? `${e.node} · ${e.claim_id}` : e.node;
    const desc = `${name}: starts at +${duration(offsets[i])}, takes ${duration(e.duration_ms)}${e.error ? ", with an error" : ""}`;
    return h(
      "li",
      { class: ["tl-row", `node-${e.node}`, e.error && "has-error"], dataset: { node: e.node, index: i } },
      h(
        "button",
        {
          type: "button",
          class: "tl-label linklike",
          title: desc,
          "aria-label": `${desc}. Show this node run.`,
          onclick: () => onSelect && onSelect(i),
        },
        h("span", { class: "tl-node" }, e.node),
        e.claim_id ? h("span", { class: "tl-claim" }, e.claim_id) : null,
      ),
      h(
        "div",
        { class: "tl-track" },
        h("span", {
          class: "tl-bar",
          vars: { "--start": pct(start), "--width": pct(width) },
        }),
        h("span", { class: ["tl-dur", start + width > 72 && "tl-dur--left"], vars: { "--start": pct(start), "--end": pct(start + width) } }, duration(e.duration_ms)),
      ),
    );
  });
  rows.append(...items);
  return h(
    "div",
    { class: "timeline" },
    axis,
    h("div", { class: "tl-body" }, rows),
  );
}
