// The viewer's entry point: a hash router over three pages (#/runs, #/runs/<id>, #/verify).

import { ROOT, setApiKey } from "./api.js";
import { forgetKeyButton, showKeyForm } from "./auth.js";
import { h, replace } from "./dom.js";
import { showRun } from "./run.js";
import { showRuns } from "./runs.js";
import { showVerify } from "./verify.js";

const main = document.getElementById("main");
let cleanup = () => {};
let firstRender = true;

/** The route of a location hash: {page, id?, params}. */
export function parseRoute(hash) {
  const raw = hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?", 2);
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0 || (parts[0] === "runs" && parts.length === 1)) return { page: "runs", params };
  if (parts[0] === "runs" && parts.length === 2) {
    let id = parts[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      // leave it as typed; the API answers 404
    }
    return { page: "run", id, params };
  }
  if (parts[0] === "verify" && parts.length === 1) return { page: "verify", params };
  return { page: "missing", params };
}

function setNav(page) {
  const section = page === "verify" ? "verify" : "runs";
  for (const link of document.querySelectorAll(".nav-link[data-route]")) {
    if (link.dataset.route === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function render() {
  // In-page anchors (#main from the skip link) are not routes.
  if (window.location.hash && !window.location.hash.startsWith("#/")) return;
  if (!window.location.hash) {
    history.replaceState(null, "", "#/runs");
  }
  const route = parseRoute(window.location.hash);
  cleanup();
  cleanup = () => {};
  setNav(route.page);
  main.dataset.page = route.page;
  delete main.dataset.renderMs;
  if (route.page === "runs") cleanup = showRuns(main, route.params);
  else if (route.page === "run") cleanup = showRun(main, route.id, route.params);
  else if (route.page === "verify") cleanup = showVerify(main);
  else {
    document.title = "Not found · verifact";
    replace(main, h("h1", { class: "page-title", tabindex: "-1" }, "Page not found"), h("p", null, h("a", { href: "#/runs" }, "Go to the runs")));
  }
  if (!firstRender) {
    window.scrollTo(0, 0);
    // Move focus to the new page so screen readers announce it (its heading, once rendered).
    const heading = main.querySelector("h1");
    (heading || main).focus({ preventScroll: true });
  }
  firstRender = false;
}

document.querySelector(".skip-link").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
const docs = document.querySelector('.nav-link[href="/docs"]');
if (docs) docs.setAttribute("href", new URL("docs", ROOT).pathname);

// A 401 from any request: ask for a key (forgetting one the server refused), then show the page again.
window.addEventListener("verifact:unauthorized", (ev) => {
  const rejected = Boolean(ev.detail && ev.detail.hadKey);
  if (rejected) setApiKey("");
  // After the page's own handling of the failed request, so that the form is what stays.
  window.setTimeout(() => {
    cleanup();
    cleanup = () => {};
    main.dataset.page = "key";
    showKeyForm(main, { rejected, onKey: render });
  }, 0);
});
const nav = document.querySelector(".nav");
if (nav) nav.appendChild(forgetKeyButton(render));

window.addEventListener("hashchange", render);
render();
