// The verify page: POST /verify/stream, light the graph's nodes as their events arrive, then open
// the run.

import { getGraph, verifyStream } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { duration, plural, verdictInfo } from "./format.js";
import { drawGraph } from "./graph.js";
import { synopsis } from "./panels.js";

const EXAMPLE =
  "Global temperatures rose 1.1 degrees since 1880. Thank you all for coming tonight. " +
  "Unemployment fell to 3.5 percent in 2019. Arctic sea ice reached a record low in 2012. " +
  "What a wonderful crowd!";

let draft = "";

function numberField(id, label, value, min, max, help) {
  const input = h("input", { id, name: id, type: "number", min: String(min), max: String(max), step: "1", inputmode: "numeric" });
  input.value = String(value);
  return {
    input,
    el: h("div", { class: "field" }, h("label", { for: id }, label), input, h("span", { class: "hint", id: `${id}-hint` }, help)),
  };
}

/** Show the verify page in `main`. Returns a cleanup function (aborts a running stream). */
export function showVerify(main) {
  document.title = "Verify · verifact";
  let controller = null;

  const text = h("textarea", { id: "verify-text", name: "text", rows: "6", required: true, spellcheck: "true", placeholder: "Paste a paragraph: each sentence is scored for check-worthiness, and the claims are checked against the evidence index." });
  text.value = draft;
  text.addEventListener("input", () => {
    draft = text.value;
  });
  const topK = numberField("opt-top-k", "Evidence per claim (top_k)", 5, 1, 50, "1 to 50");
  const maxClaims = numberField("opt-max-claims", "Claims at most (max_claims)", 20, 1, 200, "1 to 200");
  const judge = h("select", { id: "opt-judge", name: "judge" }, h("option", { value: "auto" }, "auto"), h("option", { value: "llm" }, "llm"), h("option", { value: "nli" }, "nli"));
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Verify");
  const cancel = h("button", { type: "button", class: "button", hidden: true }, "Cancel");
  const example = h("button", { type: "button", class: "button button-quiet" }, "Use an example");
  const form = h(
    "form",
    { class: "verify-form", "aria-describedby": "verify-help" },
    h("div", { class: "field" }, h("label", { for: "verify-text" }, "Text to check"), text),
    h(
      "fieldset",
      { class: "options" },
      h("legend", null, "Options"),
      topK.el,
      maxClaims.el,
      h("div", { class: "field" }, h("label", { for: "opt-judge" }, "Judge"), judge, h("span", { class: "hint" }, "auto: the LLM when configured, else NLI")),
    ),
    h("div", { class: "form-actions" }, submit, cancel, example),
  );

  const status = h("p", { class: "verify-status", role: "status" });
  const graphBox = h("div", { class: "graph-box" }, h("p", { class: "muted" }, "Loading the graph…"));
  const log = h("ol", { class: "event-log", "aria-label": "Node runs as they finish" });
  const progress = h(
    "section",
    { class: "panel progress-panel", "aria-labelledby": "h-progress" },
    h("h2", { id: "h-progress" }, "Progress"),
    status,
    graphBox,
    log,
  );

  let graph = null;
  getGraph()
    .then((diagram) => {
      graph = drawGraph(diagram, { label: "Verification graph; nodes light up as they finish" });
      replace(graphBox, graph.el);
    })
    .catch(() => replace(graphBox, h("p", { class: "muted" }, "The graph diagram is unavailable.")));

  const setBusy = (busy) => {
    submit.disabled = busy;
    example.disabled = busy;
    cancel.hidden = !busy;
    text.readOnly = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  };

  const reset = () => {
    log.textContent = "";
    if (graph) {
      for (const n of graph.nodes) {
        for (const cls of ["running", "on-path", "skipped"]) graph.mark(n, cls, false);
        graph.setMeta(n, "");
        const g = graph.mark(n, "done", false);
        if (g) g.removeAttribute("data-count");
      }
      graph.lightPath([], false);
    }
  };

  const run = async () => {
    const body = {
      text: text.value,
      top_k: Number(topK.input.value) || 5,
      max_claims: Number(maxClaims.input.value) || 20,
      judge: judge.value,
    };
    reset();
    setBusy(true);
    status.className = "verify-status";
    status.textContent = "Running…";
    controller = new AbortController();
    const counts = new Map();
    const visited = [];
    let expected = null;
    if (graph) graph.mark("split", "running");
    // What runs next: the one successor, or for detect's branch, the side its selection takes.
    const successors = (node) => {
      if (!graph) return [];
      const next = graph.edgesFrom(node);
      if (next.length === 1) return next;
      if (node === "detect" && expected !== null) return [expected > 0 ? "retrieve" : "report"];
      return [];
    };
    try {
      let ended = false;
      await verifyStream(
        body,
        (name, data) => {
          if (name === "node") {
            const node = data.node;
            const n = Math.max(1, (data.events || []).length);
            counts.set(node, (counts.get(node) || 0) + n);
            if (!visited.includes(node)) visited.push(node);
            for (const e of data.events || []) {
              if (e.node === "detect" && Array.isArray(e.outputs.selected)) expected = e.outputs.selected.length;
              log.appendChild(
                h(
                  "li",
                  { class: ["log-item", `node-${e.node}`, e.error && "has-error"] },
                  h("span", { class: ["node-chip", `node-${e.node}`] }, e.node),
                  e.claim_id ? h("span", { class: "claim-id" }, e.claim_id) : null,
                  h("span", { class: "synopsis" }, synopsis(e)),
                  h("span", { class: "dur" }, duration(e.duration_ms)),
                ),
              );
            }
            if (graph) {
              const g = graph.mark(node, "done");
              graph.mark(node, "running", false);
              const c = counts.get(node);
              if (g) g.dataset.count = String(c);
              const perClaim = node === "retrieve" || node === "judge";
              graph.setMeta(node, perClaim && expected !== null ? `${c} / ${expected}` : c > 1 ? `×${c}` : "done");
              for (const next of successors(node)) {
                if (!counts.has(next)) graph.mark(next, "running");
              }
              graph.lightPath(visited, false);
            }
            status.textContent = `${node} finished${counts.get(node) > 1 ? ` (${counts.get(node)})` : ""}…`;
          } else if (name === "result") {
            ended = true;
            if (graph) graph.lightPath(visited, true);
            const s = data.summary || {};
            const verdicts = ["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"]
              .map((v) => [v, { SUPPORTED: s.supported, REFUTED: s.refuted, NOT_ENOUGH_INFO: s.not_enough_info }[v]])
              .filter(([, c]) => c)
              .map(([v, c]) => `${c} ${verdictInfo(v).short}`)
              .join(", ");
            const message = `Done in ${duration(data.duration_ms)}: ${plural(s.checked || 0, "claim")} checked${verdicts ? ` (${verdicts})` : ""}.`;
            announce(message);
            if (data.trace_stored === false) {
              status.textContent = `${message} The trace was not stored, so the run cannot be opened.`;
            } else {
              status.textContent = message;
              draft = "";
              window.location.hash = `#/runs/${encodeURIComponent(data.trace_id)}`;
            }
          } else if (name === "error") {
            ended = true;
            const err = (data && data.error) || {};
            status.className = "verify-status notice notice-error";
            replace(
              status,
              h("strong", null, "The run failed: "),
              err.message || String(data),
              err.trace_id ? h("span", null, " ", h("a", { href: `#/runs/${encodeURIComponent(err.trace_id)}` }, "see its trace")) : null,
            );
            announce(`The run failed: ${err.message || ""}`);
          }
        },
        { signal: controller.signal },
      );
      if (!ended) {
        status.className = "verify-status notice notice-error";
        status.textContent = "The stream ended without a result.";
      }
    } catch (err) {
      status.className = "verify-status notice notice-error";
      status.textContent = err && err.name === "AbortError" ? "Cancelled." : `The request failed: ${err.message || err}`;
      if (!(err && err.name === "AbortError")) announce(status.textContent);
    } finally {
      if (graph) for (const n of graph.nodes) graph.mark(n, "running", false);
      setBusy(false);
      controller = null;
    }
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!text.value.trim()) {
      status.className = "verify-status notice notice-error";
      status.textContent = "Enter a text to check.";
      text.focus();
      return;
    }
    if (!controller) run();
  });
  cancel.addEventListener("click", () => controller && controller.abort());
  example.addEventListener("click", () => {
    text.value = EXAMPLE;
    draft = EXAMPLE;
    text.focus();
  });

  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", { class: "page-title", tabindex: "-1" }, "Verify a text"),
      h("p", { class: "section-note", id: "verify-help" }, "The claims are found, the evidence retrieved and each claim judged; the graph lights up as each step finishes, then the run opens."),
    ),
    h("div", { class: "verify-layout" }, h("section", { class: "panel", "aria-label": "Text and options" }, form), progress),
  );
  return () => {
    if (controller) controller.abort();
  };
}
