// A collapsible panel per node run: inputs, outputs, decisions, and for the judge its prompt, raw
// reply, usage, attempts and errors. Panels are built when first opened, so 100 claims stay cheap.

import { duration, num, plural, verdictInfo } from "./format.js";
import { h } from "./dom.js";

const SHORT_LIST = 24;
const SHORT_TEXT = 160;

function isPlain(v) {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

function numberText(v) {
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(6)));
}

/** Pretty JSON in a <pre>. */
export function jsonBlock(value, cls = "json") {
  return h("pre", { class: ["code", cls] }, JSON.stringify(value, null, 2));
}

/** A readable view of any JSON value: short values inline, nested objects as tables, big ones as JSON. */
export function valueView(v, depth = 0) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "—");
  if (typeof v === "boolean") return h("span", { class: ["bool", v ? "bool-yes" : "bool-no"] }, v ? "true" : "false");
  if (typeof v === "number") return h("span", { class: "num" }, numberText(v));
  if (typeof v === "string") {
    if (v.length > SHORT_TEXT || v.includes("\n")) return h("pre", { class: "code text-block" }, v);
    return h("span", { class: "str" }, v);
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return h("span", { class: "muted" }, "(none)");
    if (v.length <= SHORT_LIST && v.every(isPlain) && v.join(", ").length <= SHORT_TEXT) {
      return h("span", { class: "list" }, v.map((x) => h("code", { class: "item" }, x === null ? "null" : String(x))));
    }
    return jsonBlock(v);
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return h("span", { class: "muted" }, "(empty)");
  if (depth < 2 && keys.length <= 16) return kvTable(v, depth + 1);
  return jsonBlock(v);
}

/** An object as a two-column key/value table. */
export function kvTable(obj, depth = 0, { skip = [] } = {}) {
  const rows = Object.entries(obj)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, valueView(v, depth))));
  return h("table", { class: "kv" }, h("tbody", null, rows));
}

function cellView(v) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "—");
  if (typeof v === "number") return h("span", { class: "num" }, numberText(v));
  if (typeof v === "boolean") return h("span", { class: ["bool", v ? "bool-yes" : "bool-no"] }, v ? "yes" : "no");
  if (typeof v === "string") return v;
  return h("code", null, JSON.stringify(v));
}

/** A list of records as a table with a column per key (in order of first appearance). */
export function recordsTable(records, { caption } = {}) {
  const columns = [];
  const seen = new Set();
  for (const r of records) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
    }
  }
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "records" },
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, records.map((r) => h("tr", null, columns.map((c) => h("td", null, cellView(r[c])))))),
    ),
  );
}

function section(title, ...content) {
  const key = title.toLowerCase().split(" ")[0];
  return h("section", { class: "panel-section", dataset: { section: key } }, h("h4", null, title), content);
}

function messagesView(messages) {
  return h(
    "ol",
    { class: "messages" },
    messages.map((m) =>
      h(
        "li",
        { class: ["message", `role-${m.role}`] },
        h("div", { class: "message-role" }, m.role),
        h("pre", { class: "code message-content" }, m.content),
      ),
    ),
  );
}

/** Everything a judge recorded about one call. */
export function judgeTraceView(t) {
  if (!t || typeof t !== "object") return h("p", { class: "muted" }, "No judge trace.");
  const overview = {
    judge: t.judge,
    model: t.model,
    prompt_version: t.prompt_version || null,
    prompt_hash: t.prompt_hash || null,
    latency_ms: t.latency_ms,
    attempts: t.attempts,
    retries: t.retries,
    mode: t.mode,
  };
  if (t.skipped_reason) overview.skipped_reason = t.skipped_reason;
  const parts = [kvTable(overview)];
  const messages = t.messages || [];
  if (messages.length) parts.push(section(`Prompt (${plural(messages.length, "message")})`, messagesView(messages)));
  if (t.raw_reply !== null && t.raw_reply !== undefined) {
    parts.push(section("Raw reply", h("pre", { class: "code raw-reply" }, t.raw_reply)));
  }
  if (t.parsed) parts.push(section("Parsed reply", kvTable(t.parsed)));
  if (t.usage && Object.keys(t.usage).length) parts.push(section("Usage", h("div", { class: "usage" }, kvTable(t.usage))));
  if ((t.attempt_log || []).length) {
    const rows = t.attempt_log.map((a) => ({
      "#": a.number,
      mode: a.mode,
      outcome: a.outcome,
      status: a.status,
      latency: duration(a.latency_ms),
      wait: a.wait_ms ? duration(a.wait_ms) : null,
      error: a.error,
    }));
    parts.push(section("Attempts", recordsTable(rows, { caption: "Requests to the model" })));
  }
  if ((t.errors || []).length) {
    parts.push(section("Errors", h("ul", { class: "errors" }, t.errors.map((e) => h("li", null, h("code", null, e))))));
  }
  if (t.details && Object.keys(t.details).length) parts.push(section("Details", valueView(t.details)));
  if (t.second_opinion) {
    parts.push(
      h(
        "details",
        { class: "nested" },
        h("summary", null, `Second opinion's trace (${t.second_opinion.judge})`),
        judgeTraceView(t.second_opinion),
      ),
    );
  }
  return h("div", { class: "judge-trace" }, parts);
}

/** One line that says what a node run did. */
export function synopsis(e) {
  const o = e.outputs || {};
  switch (e.node) {
    case "split":
      return plural(o.sentences ?? 0, "sentence");
    case "detect": {
      const n = (e.decisions || []).length;
      const sel = Array.isArray(o.selected) ? o.selected.length : 0;
      return `${o.check_worthy ?? 0} of ${n} check-worthy, ${sel} selected`;
    }
    case "retrieve":
      return `${plural(o.passages ?? 0, "passage")}${(o.ids || []).length ? `, best ${o.ids[0]}` : ""}`;
    case "judge": {
      const v = o.verdict || {};
      return `${verdictInfo(v.label).label} · ${num(v.confidence, 2)} · ${(e.inputs || {}).judge || v.judge || ""}`;
    }
    case "report":
      return `${o.status || ""} · ${plural((e.inputs || {}).results ?? 0, "result")}`;
    default:
      return "";
  }
}

function body(e, offset) {
  const parts = [
    h(
      "p",
      { class: "panel-meta" },
      `Started at +${duration(offset)} · took ${duration(e.duration_ms)}`,
      e.claim_id ? ` · claim ${e.claim_id}` : "",
    ),
  ];
  if (e.error) parts.push(h("p", { class: "notice notice-error" }, h("strong", null, "Error: "), e.error));
  if (e.inputs && Object.keys(e.inputs).length) parts.push(section("Inputs", kvTable(e.inputs)));
  const outputs = e.outputs || {};
  if (e.node === "judge" && (outputs.verdict || outputs.trace)) {
    if (outputs.verdict) parts.push(section("Verdict", kvTable(outputs.verdict, 0)));
    if (outputs.trace) parts.push(section("Judge trace", judgeTraceView(outputs.trace)));
    const rest = Object.fromEntries(Object.entries(outputs).filter(([k]) => k !== "verdict" && k !== "trace"));
    if (Object.keys(rest).length) parts.push(section("Other outputs", kvTable(rest)));
  } else if (Object.keys(outputs).length) {
    parts.push(section("Outputs", kvTable(outputs)));
  }
  const decisions = e.decisions || [];
  if (decisions.length) {
    parts.push(section(`Decisions (${decisions.length})`, recordsTable(decisions, { caption: `Decisions of ${e.node}` })));
  }
  return h("div", { class: "panel-body" }, parts);
}

/**
 * The node-run panels with a filter by node. Returns {el, open(index)}; `offsets` are the events'
 * start offsets from the timeline.
 */
export function drawPanels(trace, offsets) {
  const events = trace.events || [];
  const built = new Set();
  const fills = [];
  const panels = events.map((e, i) => {
    const details = h(
      "details",
      { class: ["node-run", `node-${e.node}`, e.error && "has-error"], dataset: { node: e.node, index: i, claim: e.claim_id || "" } },
      h(
        "summary",
        null,
        h("span", { class: ["node-chip", `node-${e.node}`] }, e.node),
        e.claim_id ? h("span", { class: "claim-id" }, e.claim_id) : null,
        h("span", { class: "synopsis" }, synopsis(e)),
        e.error ? h("span", { class: "flag flag-error" }, "error") : null,
        h("span", { class: "dur" }, duration(e.duration_ms)),
      ),
    );
    const fill = () => {
      if (built.has(i)) return;
      built.add(i);
      details.appendChild(body(e, offsets[i] || 0));
    };
    details.addEventListener("toggle", () => {
      if (details.open) fill();
    });
    fills.push(fill);
    return details;
  });

  const counts = new Map();
  for (const e of events) counts.set(e.node, (counts.get(e.node) || 0) + 1);
  const filterId = "panel-filter";
  const select = h(
    "select",
    { id: filterId },
    h("option", { value: "" }, `All node runs (${events.length})`),
    [...counts].map(([n, c]) => h("option", { value: n }, `${n} (${c})`)),
  );
  select.addEventListener("change", () => {
    const want = select.value;
    for (const p of panels) p.hidden = Boolean(want) && p.dataset.node !== want;
  });
  const list = h("div", { class: "panels" }, panels);
  const el = h(
    "div",
    { class: "node-runs" },
    h("div", { class: "toolbar" }, h("label", { for: filterId }, "Show"), select),
    list,
  );
  return {
    el,
    open(index) {
      const p = panels[index];
      if (!p) return;
      if (p.hidden) {
        select.value = "";
        for (const q of panels) q.hidden = false;
      }
      fills[index]();
      p.open = true;
      p.scrollIntoView({ block: "start", behavior: "smooth" });
      p.querySelector("summary").focus({ preventScroll: true });
    },
  };
}
