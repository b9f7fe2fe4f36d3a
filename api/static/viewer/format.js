// Labels, numbers, times and durations as the viewer shows them.

export const VERDICTS = ["SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"];

const VERDICT_INFO = {
  SUPPORTED: { cls: "v-supported", icon: "✓", label: "Supported", short: "supported" },
  REFUTED: { cls: "v-refuted", icon: "✗", label: "Refuted", short: "refuted" },
  NOT_ENOUGH_INFO: { cls: "v-nei", icon: "?", label: "Not enough info", short: "not enough info" },
};

/** Class, icon and words for a verdict label (an unknown label is shown as itself). */
export function verdictInfo(label) {
  return VERDICT_INFO[label] || { cls: "v-unknown", icon: "·", label: String(label), short: String(label) };
}

/** A number with `digits` decimals, or an em dash for null/undefined. */
export function num(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return Number(value).toFixed(digits);
}

/** Milliseconds as "0.42 ms", "12.3 ms", "1.24 s" or "2 min 3 s". */
export function duration(ms) {
  const v = Number(ms);
  if (!Number.isFinite(v)) return "—";
  if (v === 0) return "0 ms";
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(2)} s`;
  const min = Math.floor(v / 60_000);
  return `${min} min ${Math.round((v - min * 60_000) / 1000)} s`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** An ISO timestamp as a local date and time. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

/** An ISO timestamp relative to now: "5 minutes ago". */
export function ago(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const secs = Math.round((t - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 60) return relative.format(secs, "second");
  if (abs < 3600) return relative.format(Math.round(secs / 60), "minute");
  if (abs < 86_400) return relative.format(Math.round(secs / 3600), "hour");
  return relative.format(Math.round(secs / 86_400), "day");
}

/** Milliseconds since the epoch of an ISO timestamp, keeping microseconds the Date parser drops. */
export function epochMs(iso) {
  const base = new Date(iso).getTime();
  const m = /\.(\d{3})(\d+)/.exec(String(iso));
  if (!m) return base;
  return base + Number(`0.${m[2]}`);
}

/** `url` when it is an http(s) URL, else null: a document's URL must never become a script link. */
export function safeUrl(url) {
  if (!url) return null;
  try {
    const u = new URL(url, window.location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** A short trace id for headings. */
export function shortId(id) {
  return String(id).slice(0, 8);
}

/** Plural helper: plural(3, "claim") === "3 claims". */
export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}
