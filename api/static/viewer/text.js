// The input text with every sentence: claims highlighted by verdict, each sentence's
// check-worthiness score against the threshold on hover or keyboard focus.

import { meter } from "./claims.js";
import { h, replace } from "./dom.js";
import { num, verdictInfo } from "./format.js";

function sentenceStatus(sentence, claim, threshold, maxClaims) {
  if (claim) {
    const info = verdictInfo(claim.verdict);
    return { cls: ["claim", info.cls], text: `Checked as claim ${claim.claim_id}: ${info.label} (confidence ${num(claim.confidence, 2)})` };
  }
  if (sentence.selected) {
    return { cls: ["worthy"], text: "Selected as a claim, but the run ended before it was judged" };
  }
  if (sentence.check_worthy) {
    return { cls: ["worthy"], text: `Check-worthy but not checked: over max_claims (${maxClaims})` };
  }
  return { cls: ["plain"], text: `Not check-worthy (below the threshold ${num(threshold, 3)})` };
}

/**
 * The input text, every sentence a focusable span (one tab stop, arrows move between them) with a
 * tooltip of its score against the threshold; claims coloured by verdict and marked with an icon.
 * `onActivate(sentence, byKeyboard)` runs on click or Enter.
 */
export function drawText(trace, claimBySentence, threshold, { onActivate }) {
  const text = trace.text || "";
  const sentences = trace.sentences || [];
  const maxClaims = (trace.header.options || {}).max_claims ?? "?";
  const tip = h("div", { class: "tip", id: "sentence-tip", role: "tooltip", hidden: true });
  const doc = h("div", {
    class: "doc",
    role: "group",
    "aria-label": "Input text. Arrow keys move between sentences; Enter opens a claim.",
  });
  const spans = [];
  let pos = 0;
  for (const s of sentences) {
    if (s.start > pos) doc.appendChild(document.createTextNode(text.slice(pos, s.start)));
    const claim = claimBySentence.get(s.index);
    const st = sentenceStatus(s, claim, threshold, maxClaims);
    const span = h(
      "span",
      {
        class: ["sent", ...st.cls],
        tabindex: spans.length === 0 ? "0" : "-1",
        "aria-describedby": "sentence-tip",
        dataset: { index: s.index, claim: claim ? claim.claim_id : "" },
      },
      text.slice(s.start, s.end) || s.text,
      claim ? h("span", { class: "sent-mark", "aria-hidden": "true" }, verdictInfo(claim.verdict).icon) : null,
    );
    spans.push(span);
    doc.appendChild(span);
    pos = Math.max(pos, s.end);
  }
  if (pos < text.length) doc.appendChild(document.createTextNode(text.slice(pos)));
  const bySpan = new Map(spans.map((sp, i) => [sp, sentences[i]]));
  const posOf = new Map(spans.map((sp, i) => [sp, i]));
  const spanOf = new Map(sentences.map((s, i) => [s.index, spans[i]]));

  const showTip = (span) => {
    const s = bySpan.get(span);
    if (!s) return;
    const claim = claimBySentence.get(s.index);
    const st = sentenceStatus(s, claim, threshold, maxClaims);
    const cmp = s.score >= threshold ? "≥" : "<";
    replace(
      tip,
      h("div", { class: "tip-title" }, `Sentence ${s.index + 1} of ${sentences.length}`),
      h("div", { class: "tip-score" }, `check-worthiness ${num(s.score, 3)} ${cmp} threshold ${num(threshold, 3)}`),
      meter(s.score, { mark: threshold, cls: s.check_worthy ? "meter-worthy" : "" }),
      h("div", { class: "tip-status" }, st.text),
      s.truncated ? h("div", { class: "tip-note" }, "The classifier saw only the start of this long sentence.") : null,
    );
    tip.hidden = false;
    const r = span.getBoundingClientRect();
    const tw = tip.offsetWidth;
    const th = tip.offsetHeight;
    const x = Math.max(8, Math.min(r.left, window.innerWidth - tw - 8));
    const below = r.bottom + 8;
    const y = below + th > window.innerHeight - 8 ? Math.max(8, r.top - th - 8) : below;
    tip.style.setProperty("--tip-x", `${Math.round(x)}px`);
    tip.style.setProperty("--tip-y", `${Math.round(y)}px`);
  };
  const hideTip = () => {
    tip.hidden = true;
  };
  doc.addEventListener("mouseover", (ev) => {
    const span = ev.target.closest && ev.target.closest(".sent");
    if (span) showTip(span);
  });
  doc.addEventListener("mouseleave", hideTip);
  doc.addEventListener("focusin", (ev) => {
    if (ev.target.classList.contains("sent")) showTip(ev.target);
  });
  doc.addEventListener("focusout", hideTip);
  window.addEventListener("scroll", hideTip, { passive: true });

  const focusSpan = (i) => {
    const next = spans[Math.max(0, Math.min(spans.length - 1, i))];
    if (!next) return;
    for (const sp of spans) if (sp.tabIndex === 0 && sp !== next) sp.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  };
  doc.addEventListener("keydown", (ev) => {
    const span = ev.target.closest && ev.target.closest(".sent");
    if (!span) return;
    const i = posOf.get(span);
    const keys = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: spans.length - 1 };
    if (ev.key in keys) {
      ev.preventDefault();
      focusSpan(keys[ev.key]);
    } else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      onActivate(bySpan.get(span), true);
    } else if (ev.key === "Escape") {
      hideTip();
    }
  });
  doc.addEventListener("click", (ev) => {
    const span = ev.target.closest && ev.target.closest(".sent");
    if (span) onActivate(bySpan.get(span), false);
  });

  return {
    el: h("div", { class: "doc-wrap" }, doc, tip),
    setCurrent(index) {
      for (const sp of doc.querySelectorAll(".sent.is-current")) sp.classList.remove("is-current");
      const span = spanOf.get(index);
      if (span) span.classList.add("is-current");
    },
    focusSentence(index) {
      const span = spanOf.get(index);
      if (!span) return;
      span.scrollIntoView({ block: "center", behavior: "smooth" });
      for (const sp of spans) if (sp.tabIndex === 0) sp.tabIndex = -1;
      span.tabIndex = 0;
      span.focus({ preventScroll: true });
      span.classList.remove("flash");
      void span.offsetWidth; // restart the highlight animation
      span.classList.add("flash");
    },
    dispose() {
      window.removeEventListener("scroll", hideTip);
    },
  };
}
