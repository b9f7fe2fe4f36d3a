// The runs list: newest first, filtered by verdict and text, paged with the API's cursor.

import { listTraces } from "./api.js";
import { h, replace } from "./dom.js";
import { ago, duration, shortId, verdictInfo, VERDICTS, when } from "./format.js";

const PAGE = 25;

function chips(summary) {
  if (!summary.checked) return h("span", { class: "muted" }, summary.sentences ? "no claims" : "empty");
  const counts = { SUPPORTED: summary.supported, REFUTED: summary.refuted, NOT_ENOUGH_INFO: summary.not_enough_info };
  return h(
    "span",
    { class: "chips" },
    VERDICTS.filter((v) => counts[v] > 0).map((v) => {
      const info = verdictInfo(v);
      return h(
        "span",
        { class: ["chip", info.cls], title: `${counts[v]} ${info.short}` },
        h("span", { class: "icon", "aria-hidden": "true" }, info.icon),
        " ",
        h("span", { class: "chip-count" }, String(counts[v])),
        " ",
        h("span", { class: "chip-label" }, info.short),
      );
    }),
    summary.errors ? h("span", { class: ["chip", "chip-error"] }, h("span", { class: "chip-count" }, String(summary.errors)), " ", h("span", { class: "chip-label" }, summary.errors === 1 ? "error" : "errors")) : null,
  );
}

function row(item) {
  const href = `#/runs/${encodeURIComponent(item.trace_id)}`;
  const tr = h(
    "tr",
    { class: "run-row", dataset: { traceId: item.trace_id } },
    h("td", { class: "col-time" }, h("time", { datetime: item.created_at, title: when(item.created_at) }, ago(item.created_at)), h("span", { class: "sub" }, when(item.created_at))),
    h(
      "td",
      { class: "col-text" },
      h("a", { class: "snippet", href }, item.snippet || "(empty text)"),
      h("span", { class: "sub" }, h("code", null, shortId(item.trace_id)), ` · ${item.summary.sentences} sentence${item.summary.sentences === 1 ? "" : "s"}`),
    ),
    h("td", { class: "col-claims" }, chips(item.summary)),
    h("td", { class: "col-num" }, duration(item.duration_ms)),
    h("td", { class: "col-status" }, h("span", { class: ["badge", "status", `status-${item.status}`] }, item.status)),
  );
  // The whole row opens the run for mouse users; the link inside stays the keyboard's way in.
  tr.addEventListener("click", (ev) => {
    if (ev.target.closest("a, button") || window.getSelection().toString()) return;
    window.location.hash = href;
  });
  return tr;
}

/** Show the runs list in `main`, filtered by `params` (verdict, q). Returns a cleanup function. */
export function showRuns(main, params) {
  document.title = "Runs · verifact";
  let controller = null;
  let cursor = null;
  let shown = 0;
  const state = { verdict: params.get("verdict") || "", q: params.get("q") || "" };

  const verdictSelect = h(
    "select",
    { id: "filter-verdict", name: "verdict" },
    h("option", { value: "" }, "Any verdict"),
    VERDICTS.map((v) => h("option", { value: v }, verdictInfo(v).label)),
  );
  verdictSelect.value = VERDICTS.includes(state.verdict) ? state.verdict : "";
  const search = h("input", { id: "filter-q", name: "q", type: "search", placeholder: "Words in the text", autocomplete: "off", maxlength: "200" });
  search.value = state.q;
  const clearButton = h("button", { type: "button", class: "button button-quiet" }, "Clear");
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    h("div", { class: "field" }, h("label", { for: "filter-verdict" }, "Verdict"), verdictSelect),
    h("div", { class: "field field-grow" }, h("label", { for: "filter-q" }, "Text contains"), search),
    h("div", { class: "field field-actions" }, h("button", { type: "submit", class: "button" }, "Filter"), clearButton),
  );

  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "runs" },
    h("caption", { class: "visually-hidden" }, "Recent runs, newest first"),
    h(
      "thead",
      null,
      h("tr", null, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Text"), h("th", { scope: "col" }, "Claims"), h("th", { scope: "col", class: "col-num" }, "Duration"), h("th", { scope: "col" }, "Status")),
    ),
    tbody,
  );
  const status = h("p", { class: "list-status", role: "status" });
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load more");
  const empty = h("div", { class: "empty", hidden: true });

  const load = async (append) => {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    more.disabled = true;
    status.textContent = append ? "Loading more…" : "Loading…";
    try {
      const page = await listTraces({ limit: PAGE, verdict: state.verdict, q: state.q, cursor: append ? cursor : null }, { signal });
      if (signal.aborted) return;
      if (!append) {
        tbody.textContent = "";
        shown = 0;
      }
      const frag = document.createDocumentFragment();
      for (const item of page.items) frag.appendChild(row(item));
      tbody.appendChild(frag);
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      table.hidden = shown === 0;
      empty.hidden = shown !== 0;
      const filtered = state.verdict || state.q;
      replace(
        empty,
        filtered ? h("p", null, "No run matches these filters.") : h("p", null, "No runs yet. ", h("a", { href: "#/verify" }, "Verify a text"), " to see its trace here."),
      );
      status.textContent = shown ? `${shown} run${shown === 1 ? "" : "s"}${cursor ? ", more available" : ""}${filtered ? " matching the filters" : ""}` : "";
    } catch (err) {
      if (err && err.name === "AbortError") return;
      status.textContent = "";
      replace(empty, h("p", { class: "notice notice-error" }, err.message || String(err)));
      empty.hidden = false;
      table.hidden = shown === 0;
    } finally {
      more.disabled = false;
    }
  };

  const apply = () => {
    state.verdict = verdictSelect.value;
    state.q = search.value.trim();
    const query = new URLSearchParams();
    if (state.verdict) query.set("verdict", state.verdict);
    if (state.q) query.set("q", state.q);
    const qs = query.toString();
    // Keep the filters in the address (shareable) without a hashchange re-render.
    history.replaceState(null, "", `#/runs${qs ? `?${qs}` : ""}`);
    cursor = null;
    load(false);
  };
  let timer = 0;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    window.clearTimeout(timer);
    apply();
  });
  verdictSelect.addEventListener("change", apply);
  search.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(apply, 300);
  });
  clearButton.addEventListener("click", () => {
    verdictSelect.value = "";
    search.value = "";
    apply();
  });
  more.addEventListener("click", () => load(true));

  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", { class: "title-row" }, h("h1", { class: "page-title", tabindex: "-1" }, "Runs"), h("div", { class: "actions" }, h("a", { class: "button button-primary", href: "#/verify" }, "New verification"))),
      h("p", { class: "section-note" }, "Every verification is traced. Open a run to see why each verdict was reached."),
    ),
    h("section", { class: "panel" }, form, status, h("div", { class: "table-scroll" }, table), empty, h("div", { class: "more" }, more)),
  );
  load(false);
  return () => {
    window.clearTimeout(timer);
    if (controller) controller.abort();
  };
}
