// The API, same origin: JSON requests, the graph diagram, and the /verify/stream event reader.

// The app's root, from where this module is served (/viewer/static/api.js), so the viewer also
// works behind a path prefix.
export const ROOT = new URL("../../", import.meta.url);

/** A failed request, with the API's error code and message when it sent one. */
export class ApiError extends Error {
  constructor(status, code, message, traceId = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.traceId = traceId;
  }
}

const KEY_STORE = "verifact.apiKey";
let memoryKey = ""; // where the key lives when this browser refuses sessionStorage

/** The API key kept for this tab, or "" (a server without keys needs none). */
export function apiKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return memoryKey;
  }
}

/** Keep `key` for this tab's requests (sessionStorage: gone when the tab closes); "" forgets it. */
export function setApiKey(key) {
  memoryKey = key;
  try {
    if (key) window.sessionStorage.setItem(KEY_STORE, key);
    else window.sessionStorage.removeItem(KEY_STORE);
  } catch {
    // storage is off: the key lasts until the page reloads
  }
  window.dispatchEvent(new CustomEvent("verifact:key-changed"));
}

/** `headers` with the kept key as `Authorization: Bearer`, when there is one. */
function withKey(headers) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/** An absolute URL for an API path ("traces", {limit: 20}); empty parameters are left out. */
export function apiUrl(path, params = {}) {
  const url = new URL(path.replace(/^\//, ""), ROOT);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

async function errorFrom(response) {
  let code = "error";
  let message = `${response.status} ${response.statusText}`.trim();
  let traceId = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      traceId = body.error.trace_id || null;
    }
  } catch {
    // not JSON: the status line says enough
  }
  if (response.status === 401) {
    // The app asks for a key; `hadKey` tells it that the one it sent was refused.
    const detail = { hadKey: Boolean(apiKey()) };
    window.dispatchEvent(new CustomEvent("verifact:unauthorized", { detail }));
  }
  return new ApiError(response.status, code, message, traceId);
}

/** GET a JSON resource; throws `ApiError`. */
export async function getJSON(path, params = {}, { signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl(path, params), { headers: withKey({ Accept: "application/json" }), signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

let diagram = null;
/** The verification graph's nodes and edges (fetched once). */
export function getGraph() {
  if (!diagram) {
    diagram = getJSON("graph").catch((err) => {
      diagram = null;
      throw err;
    });
  }
  return diagram;
}

/** One run's trace. */
export function getTrace(traceId, options) {
  return getJSON(`traces/${encodeURIComponent(traceId)}`, {}, options);
}

/** A page of runs: {items, next_cursor}. */
export function listTraces(params, options) {
  return getJSON("traces", params, options);
}

/**
 * POST /verify/stream and call `onEvent(name, data)` for each Server-Sent Event as it arrives.
 * EventSource cannot POST, so the body is read from the fetch response's stream.
 */
export async function verifyStream(body, onEvent, { signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl("verify/stream"), {
      method: "POST",
      headers: withKey({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (!response.ok) throw await errorFrom(response);
  if (!response.body) throw new ApiError(0, "stream", "This browser cannot read a streamed response.");

  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SSEParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(value);
  }
  parser.end();
}

/** An incremental Server-Sent Events parser (the WHATWG event-stream format). */
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  push(chunk) {
    this.buffer += chunk;
    // Lines end in \r\n, \n or \r; a trailing \r may be the first half of \r\n, so keep it.
    const re = /\r\n|\n|\r(?!$)/g;
    let start = 0;
    let m;
    while ((m = re.exec(this.buffer)) !== null) {
      this.line(this.buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  end() {
    if (this.buffer) this.line(this.buffer.replace(/\r$/, ""));
    this.buffer = "";
    this.dispatch();
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment: the server's keep-alive ping
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }

  dispatch() {
    if (this.data.length === 0) {
      this.event = "";
      return;
    }
    const name = this.event || "message";
    const raw = this.data.join("\n");
    this.event = "";
    this.data = [];
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      // leave it as text
    }
    this.onEvent(name, data);
  }
}
