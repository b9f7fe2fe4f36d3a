// A card per claim: verdict, confidence, rationale with citation links, second opinion, errors,
// and the ranked evidence (built when first opened) with cited passages marked.

import { num, safeUrl, verdictInfo } from "./format.js";
import { h } from "./dom.js";

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A verdict badge: icon and words, never colour alone. */
export function verdictBadge(label, extra = "") {
  const info = verdictInfo(label);
  return h("span", { class: ["badge", "verdict", info.cls, extra] }, h("span", { class: "icon", "aria-hidden": "true" }, info.icon), " ", info.label);
}

/** A 0..1 value as a small bar (decorative; the number beside it carries the value). */
export function meter(value, { mark = null, cls = "" } = {}) {
  const v = Math.max(0, Math.min(1, Number(value) || 0));
  const vars = { "--v": v.toFixed(4) };
  if (mark !== null) vars["--at"] = Math.max(0, Math.min(1, Number(mark))).toFixed(4);
  return h(
    "span",
    { class: ["meter", cls], "aria-hidden": "true", vars },
    h("span", { class: "meter-fill" }),
    mark !== null ? h("span", { class: "meter-mark" }) : null,
  );
}

/**
 * Split a rationale into text and citation tokens: ids of the claim's evidence (bracketed like
 * "[d1]" or bare) become links; ids the judge invented are flagged.
 */
export function rationaleParts(text, evidenceIds, invalidIds = []) {
  const ids = [...new Set([...evidenceIds, ...invalidIds])].filter(Boolean).sort((a, b) => b.length - a.length);
  if (!text || ids.length === 0) return [{ text: text || "" }];
  const re = new RegExp(`(?<![\\w-])(${ids.map(escapeRegExp).join("|")})(?![\\w-])`, "g");
  const valid = new Set(evidenceIds);
  const parts = [];
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parts.push({ text: text.slice(last, m.index) });
    parts.push({ text: m[1], id: m[1], valid: valid.has(m[1]) });
    last = m.index + m[1].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function passageView(hit, domId, maxScore) {
  const url = safeUrl(hit.url);
  const scores = [
    ["fused", hit.score, 3],
    ["dense", hit.dense_score, 3],
    ["lexical", hit.lexical_score, 2],
  ];
  return h(
    "li",
    { class: ["passage", hit.cited && "is-cited"], id: domId, tabindex: "-1", dataset: { id: hit.id } },
    h(
      "div",
      { class: "passage-head" },
      h("span", { class: "rank", title: "Rank in the retrieval" }, `#${hit.rank}`),
      h("code", { class: "pid" }, hit.id),
      hit.title ? h("span", { class: "ptitle" }, hit.title) : null,
      hit.cited ? h("span", { class: "badge badge-cited" }, h("span", { "aria-hidden": "true" }, "★ "), "cited") : null,
    ),
    h("p", { class: "passage-text" }, hit.text),
    h(
      "dl",
      { class: "scores" },
      scores.map(([name, value, digits]) =>
        h("div", { class: ["score", value === null || value === undefined ? "score-missing" : ""] }, h("dt", null, name), h("dd", null, num(value, digits))),
      ),
      h("div", { class: "score score-bar" }, h("dt", { class: "visually-hidden" }, "relative fused score"), h("dd", null, meter(maxScore > 0 ? hit.score / maxScore : 0))),
    ),
    hit.source || url
      ? h(
          "p",
          { class: "passage-source" },
          hit.source ? h("span", null, hit.source) : null,
          hit.source && url ? " · " : null,
          url ? h("a", { href: url, rel: "noopener noreferrer nofollow", target: "_blank" }, hit.url) : null,
        )
      : null,
  );
}

function secondOpinionView(detail) {
  const so = detail.second_opinion;
  const agreement = detail.agreement;
  let flag;
  if (agreement === true) flag = h("span", { class: "agreement agree" }, h("span", { "aria-hidden": "true" }, "✓ "), "agrees");
  else if (agreement === false) flag = h("span", { class: "agreement disagree" }, h("span", { "aria-hidden": "true" }, "≠ "), "disagrees");
  else flag = h("span", { class: "agreement unknown" }, "no agreement (a judge failed)");
  return h(
    "div",
    { class: ["second-opinion", agreement === false && "is-disagreement"] },
    h("span", { class: "so-title" }, "Second opinion"),
    verdictBadge(so.label, "badge-small"),
    h("span", { class: "so-meta" }, `${num(so.confidence, 2)} · ${so.judge}`),
    flag,
    so.rationale ? h("p", { class: "so-rationale" }, so.rationale) : null,
  );
}

/**
 * One claim's card. Returns {el, select(on), openEvidence(), showPassage(id)}.
 * `index` makes element ids unique; `actions` are callbacks: showSentence(claim), showRun(node, claim).
 */
export function drawClaimCard(claim, index, actions) {
  const info = verdictInfo(claim.verdict);
  const detail = claim.detail || null;
  const evidence = claim.evidence || [];
  const cited = evidence.filter((e) => e.cited).length;
  const idOf = new Map(evidence.map((e, i) => [e.id, `passage-${index}-${i}`]));
  const maxScore = Math.max(0, ...evidence.map((e) => Number(e.score) || 0));
  const titleId = `claim-title-${index}`;

  const list = h("ol", { class: "passages" });
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    list.append(...evidence.map((hit, i) => passageView(hit, `passage-${index}-${i}`, maxScore)));
  };
  const evidenceBox = h(
    "details",
    { class: "evidence" },
    h(
      "summary",
      null,
      evidence.length ? `Evidence: ${evidence.length} passage${evidence.length === 1 ? "" : "s"}` : "No evidence retrieved",
      cited ? h("span", { class: "summary-note" }, ` · ${cited} cited`) : null,
    ),
    list,
  );
  evidenceBox.addEventListener("toggle", () => {
    if (evidenceBox.open) build();
  });

  const showPassage = (id) => {
    const domId = idOf.get(id);
    if (!domId) return;
    build();
    evidenceBox.open = true;
    const el = document.getElementById(domId);
    if (!el) return;
    el.classList.remove("flash");
    void el.offsetWidth; // restart the highlight animation
    el.classList.add("flash");
    el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    el.focus({ preventScroll: true });
  };

  const rationale = h("p", { class: "rationale" });
  const invalid = detail ? detail.invalid_citations || [] : [];
  for (const part of rationaleParts(claim.rationale, evidence.map((e) => e.id), invalid)) {
    if (!part.id) {
      rationale.appendChild(document.createTextNode(part.text));
    } else if (part.valid) {
      rationale.appendChild(
        h(
          "a",
          {
            class: "cite",
            href: `#${idOf.get(part.id)}`,
            title: `Show passage ${part.id}`,
            onclick: (ev) => {
              ev.preventDefault();
              showPassage(part.id);
            },
          },
          part.text,
        ),
      );
    } else {
      rationale.appendChild(h("span", { class: "cite cite-invalid", title: "Not among the evidence: the judge invented this id" }, part.text));
    }
  }

  const flags = [];
  if (claim.error) flags.push(h("p", { class: "notice notice-error" }, h("strong", null, "Error: "), claim.error));
  // An abstention's reason is its rationale already; say "downgraded" only when it adds something.
  if (detail && detail.downgraded_reason && detail.downgraded_reason !== claim.rationale) flags.push(h("p", { class: "notice notice-warn" }, h("strong", null, "Downgraded: "), detail.downgraded_reason));
  if (invalid.length) flags.push(h("p", { class: "notice notice-warn" }, h("strong", null, "Invalid citations dropped: "), invalid.join(", ")));

  const el = h(
    "article",
    {
      class: ["claim-card", info.cls, claim.error && "has-error"],
      id: `claim-${index}`,
      tabindex: "-1",
      "aria-labelledby": titleId,
      dataset: { claim: claim.claim_id, verdict: claim.verdict },
    },
    h(
      "header",
      { class: "card-head" },
      verdictBadge(claim.verdict),
      h("span", { class: "confidence" }, "confidence ", h("strong", null, num(claim.confidence, 2)), meter(claim.confidence, { cls: info.cls })),
      h("span", { class: "card-ids" }, h("code", null, claim.claim_id), ` · sentence ${claim.sentence_index + 1}`),
    ),
    h(
      "h3",
      { class: "claim-text", id: titleId },
      h("button", { type: "button", class: "linklike", title: "Show in the text", onclick: () => actions.showSentence(claim) }, claim.text),
    ),
    claim.rationale ? rationale : h("p", { class: "rationale muted" }, "No rationale."),
    flags,
    detail && detail.second_opinion ? secondOpinionView(detail) : null,
    evidenceBox,
    h(
      "footer",
      { class: "card-foot" },
      h("span", null, `check-worthiness ${num(claim.score, 3)} · judge `, h("code", null, claim.judge)),
      h(
        "span",
        { class: "card-links" },
        h("button", { type: "button", class: "linklike", onclick: () => actions.showRun("retrieve", claim) }, "retrieve run"),
        h("button", { type: "button", class: "linklike", onclick: () => actions.showRun("judge", claim) }, "judge run"),
      ),
    ),
  );

  return {
    el,
    select(on) {
      el.classList.toggle("is-selected", on);
      if (on) {
        build();
        evidenceBox.open = true;
      }
    },
    openEvidence() {
      build();
      evidenceBox.open = true;
    },
    showPassage,
  };
}
