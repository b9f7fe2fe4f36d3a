// A run: summary, the graph, the input text with its claims, a card per claim, the timeline and
// the node-run panels; copy and export of the whole trace.

import { ApiError, getGraph, getTrace } from "./api.js";
import { drawClaimCard } from "./claims.js";
import { announce, h, replace } from "./dom.js";
import { ago, duration, num, shortId, verdictInfo, VERDICTS, when } from "./format.js";
import { drawRunGraph } from "./graph.js";
import { drawPanels, kvTable } from "./panels.js";
import { drawText } from "./text.js";
import { drawTimeline, timing } from "./timeline.js";

function statusBadge(status) {
  return h("span", { class: ["badge", "status", `status-${status}`] }, status);
}

function summaryChips(summary) {
  const chip = (cls, value, label) =>
    h("li", { class: ["stat", cls] }, h("span", { class: "stat-value" }, String(value)), h("span", { class: "stat-label" }, label));
  return h(
    "ul",
    { class: "stats", "aria-label": "Summary" },
    chip("", summary.sentences, "sentences"),
    chip("", summary.check_worthy, "check-worthy"),
    chip("", summary.checked, "checked"),
    chip("v-supported", summary.supported, "supported"),
    chip("v-refuted", summary.refuted, "refuted"),
    chip("v-nei", summary.not_enough_info, "not enough info"),
    chip(summary.errors ? "stat-error" : "", summary.errors, "errors"),
  );
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // denied: try the old way below
    }
  }
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

function exportJSON(text, filename) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = h("a", { href: url, download: filename, class: "offscreen" });
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function claimFilter(claims, onChange) {
  const counts = { "": claims.length, errors: 0 };
  for (const v of VERDICTS) counts[v] = 0;
  for (const c of claims) {
    counts[c.verdict] = (counts[c.verdict] || 0) + 1;
    if (c.error) counts.errors += 1;
  }
  const options = [
    ["", "All"],
    ...VERDICTS.map((v) => [v, verdictInfo(v).label]),
    ["errors", "Errors"],
  ];
  const buttons = options.map(([value, label]) =>
    h(
      "button",
      {
        type: "button",
        class: ["seg", value && value !== "errors" ? verdictInfo(value).cls : "", value === "errors" && "seg-error"],
        "aria-pressed": value === "" ? "true" : "false",
        dataset: { value },
        disabled: value !== "" && counts[value] === 0,
      },
      `${label} `,
      h("span", { class: "seg-count" }, String(counts[value] || 0)),
    ),
  );
  const group = h("div", { class: "segmented", role: "group", "aria-label": "Show claims" }, buttons);
  group.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    for (const x of buttons) x.setAttribute("aria-pressed", x === b ? "true" : "false");
    onChange(b.dataset.value);
  });
  return {
    el: group,
    reset() {
      for (const x of buttons) x.setAttribute("aria-pressed", x.dataset.value === "" ? "true" : "false");
      onChange("");
    },
  };
}

/** Show run `traceId` in `main`; `params.claim` selects a claim. Returns a cleanup function. */
export function showRun(main, traceId, params) {
  const controller = new AbortController();
  let disposeText = () => {};
  replace(main, h("p", { class: "loading" }, "Loading run…"));
  Promise.all([getTrace(traceId, { signal: controller.signal }), getGraph().catch(() => null)])
    .then(([trace, diagram]) => {
      if (controller.signal.aborted) return;
      const t0 = performance.now();
      disposeText = render(main, trace, diagram, params);
      // The page was only "Loading…" when the router moved focus; give it to the heading now.
      if (document.activeElement === main) main.querySelector("h1").focus({ preventScroll: true });
      main.dataset.renderMs = String(Math.round(performance.now() - t0));
    })
    .catch((err) => {
      if (err && err.name === "AbortError") return;
      if (!(err instanceof ApiError)) console.error(err); // a viewer bug, not a missing run
      replace(
        main,
        h("h1", { class: "page-title", tabindex: "-1" }, "Run not available"),
        h("p", { class: "notice notice-error" }, err.message || String(err)),
        h("p", null, h("a", { href: "#/runs" }, "← All runs")),
      );
    });
  return () => {
    controller.abort();
    disposeText();
  };
}

function render(main, trace, diagram, params) {
  const header = trace.header;
  const claims = trace.claims || [];
  const options = header.options || {};
  const detect = (trace.events || []).find((e) => e.node === "detect");
  const threshold = options.threshold ?? (detect ? detect.inputs.threshold : 0.5);
  document.title = `Run ${shortId(header.trace_id)} · verifact`;

  const claimBySentence = new Map(claims.map((c) => [c.sentence_index, c]));
  const claimById = new Map(claims.map((c) => [c.claim_id, c]));
  const { offsets } = timing(trace);
  const panels = drawPanels(trace, offsets);
  const runIndex = new Map();
  (trace.events || []).forEach((e, i) => {
    if (e.claim_id) runIndex.set(`${e.node}\u0000${e.claim_id}`, i);
  });

  const cards = new Map();
  let selected = null;
  const actions = {
    showSentence: (claim) => textView.focusSentence(claim.sentence_index),
    showRun: (node, claim) => {
      const i = runIndex.get(`${node}\u0000${claim.claim_id}`);
      if (i !== undefined) panels.open(i);
    },
  };
  const selectClaim = (claimId, { focus = false, scroll = true } = {}) => {
    const card = cards.get(claimId);
    if (!card) return;
    if (card.el.hidden) filter.reset();
    if (selected && selected !== card) selected.select(false);
    selected = card;
    card.select(true);
    const claim = claimById.get(claimId);
    if (claim) textView.setCurrent(claim.sentence_index);
    if (scroll) card.el.scrollIntoView({ block: "start", behavior: "smooth" });
    if (focus) card.el.focus({ preventScroll: true });
    history.replaceState(null, "", `#/runs/${encodeURIComponent(header.trace_id)}?claim=${encodeURIComponent(claimId)}`);
  };

  const textView = drawText(trace, claimBySentence, threshold, {
    onActivate: (sentence, byKeyboard) => {
      const claim = sentence && claimBySentence.get(sentence.index);
      if (claim) selectClaim(claim.claim_id, { focus: byKeyboard });
    },
  });

  const cardList = h("div", { class: "cards" });
  const frag = document.createDocumentFragment();
  claims.forEach((c, i) => {
    const card = drawClaimCard(c, i, actions);
    cards.set(c.claim_id, card);
    frag.appendChild(card.el);
  });
  cardList.appendChild(frag);
  if (claims.length === 0) {
    const why = header.status === "error" ? "The run failed before any claim was judged." : "No sentence was check-worthy, so no claim was checked.";
    cardList.appendChild(h("p", { class: "empty" }, why));
  }
  if (claims.length <= 3) for (const card of cards.values()) card.openEvidence();

  const filter = claimFilter(claims, (value) => {
    for (const [id, card] of cards) {
      const claim = claimById.get(id);
      card.el.hidden = value === "errors" ? !claim.error : Boolean(value) && claim.verdict !== value;
    }
  });

  const json = () => JSON.stringify(trace, null, 2);
  const copyStatus = h("span", { class: "action-status", role: "status" });
  const copyButton = h("button", { type: "button", class: "button", dataset: { action: "copy" } }, "Copy JSON");
  copyButton.addEventListener("click", async () => {
    const ok = await copyText(json());
    copyStatus.textContent = ok ? "Copied" : "Copy failed: use Export";
    announce(copyStatus.textContent);
    window.setTimeout(() => {
      copyStatus.textContent = "";
    }, 2500);
  });
  const exportButton = h("button", { type: "button", class: "button", dataset: { action: "export" } }, "Export .json");
  exportButton.addEventListener("click", () => exportJSON(json(), `verifact-trace-${header.trace_id}.json`));

  const graphEl = diagram ? drawRunGraph(diagram, trace).el : h("p", { class: "muted" }, "The graph diagram is unavailable.");

  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "← All runs")),
      h(
        "div",
        { class: "title-row" },
        h("h1", { class: "page-title", tabindex: "-1" }, "Run ", h("code", { class: "trace-id", title: header.trace_id }, shortId(header.trace_id))),
        statusBadge(header.status),
        h("div", { class: "actions" }, copyStatus, copyButton, exportButton),
      ),
      h(
        "p",
        { class: "run-meta" },
        h("time", { datetime: header.created_at, title: when(header.created_at) }, `${when(header.created_at)} (${ago(header.created_at)})`),
        ` · ${duration(header.duration_ms)} · judge ${options.judge ?? "auto"} · threshold ${num(threshold, 3)} · top_k ${options.top_k ?? "?"} · max_claims ${options.max_claims ?? "?"}`,
      ),
      header.status_reason
        ? h("p", { class: ["notice", header.status === "error" ? "notice-error" : "notice-warn"] }, h("strong", null, header.status === "error" ? "The run failed: " : "Partial: "), header.status_reason)
        : null,
      summaryChips(trace.summary),
    ),
    h("section", { class: "panel graph-panel", "aria-labelledby": "h-graph" }, h("h2", { id: "h-graph" }, "Graph"), h("p", { class: "section-note" }, "The path this run took is highlighted; each node shows its runs and time."), graphEl),
    h(
      "div",
      { class: "split-view" },
      h(
        "section",
        { class: "panel text-panel", "aria-labelledby": "h-text" },
        h("h2", { id: "h-text" }, "Text"),
        h(
          "p",
          { class: "legend" },
          h("span", { class: "legend-item swatch-supported" }, "✓ supported"),
          h("span", { class: "legend-item swatch-refuted" }, "✗ refuted"),
          h("span", { class: "legend-item swatch-nei" }, "? not enough info"),
          h("span", { class: "legend-item swatch-worthy" }, "check-worthy, not checked"),
          h("span", { class: "legend-hint" }, "Hover or focus a sentence for its score."),
        ),
        textView.el,
      ),
      h(
        "section",
        { class: "panel claims-panel", "aria-labelledby": "h-claims" },
        h("div", { class: "section-head" }, h("h2", { id: "h-claims" }, `Claims (${claims.length})`), claims.length ? filter.el : null),
        cardList,
      ),
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "h-timeline" },
      h("h2", { id: "h-timeline" }, "Timeline"),
      h("p", { class: "section-note" }, `${(trace.events || []).length} node runs over ${duration(header.duration_ms)}, from the start of the run.`),
      drawTimeline(trace, { onSelect: (i) => panels.open(i) }),
    ),
    h("section", { class: "panel", "aria-labelledby": "h-runs" }, h("h2", { id: "h-runs" }, "Node runs"), panels.el),
    h(
      "section",
      { class: "panel", "aria-labelledby": "h-details" },
      h("h2", { id: "h-details" }, "Run details"),
      h(
        "details",
        { class: "run-details" },
        h("summary", null, "Options, versions and ids"),
        kvTable({ trace_id: header.trace_id, created_at: header.created_at, finished_at: header.finished_at, owner: header.owner, options, versions: header.versions }),
      ),
    ),
  );

  if (params.get("claim") && cards.has(params.get("claim"))) {
    selectClaim(params.get("claim"), { scroll: true });
  }
  return () => textView.dispose();
}
