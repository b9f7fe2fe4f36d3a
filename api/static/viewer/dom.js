// Building DOM nodes without markup strings: every text goes through createTextNode and every
// attribute through setAttribute, so data from users, documents or a model can never become HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function setProps(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key === "vars") {
      // CSS custom properties through the CSSOM: allowed by a CSP without 'unsafe-inline' styles.
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, String(v));
    } else if (key.startsWith("on")) {
      // Handlers are functions only: an "on…" attribute string would be inline script.
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === "style") {
      throw new TypeError("use classes or `vars` (CSSOM), not a style attribute");
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: h("a", {href: "#/runs", class: "x"}, "text", child, [more]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element, as `h`. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace the children of `el` with `children`. */
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** A DocumentFragment of `children`, to insert many nodes with one reflow. */
export function fragment(...children) {
  const f = document.createDocumentFragment();
  append(f, children);
  return f;
}

/** Announce a short message to screen readers. */
export function announce(message) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  // A fresh text node after clearing makes repeated messages be read again.
  window.setTimeout(() => {
    live.textContent = message;
  }, 30);
}

let idCounter = 0;
/** A page-unique element id. */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
