// The API key prompt: shown when the API answers 401. The key stays in this tab's sessionStorage and
// goes out as `Authorization: Bearer` (api.js); the server shows each key only its own runs.

import { apiKey, setApiKey } from "./api.js";
import { announce, h, replace } from "./dom.js";

/** Ask for a key in `main`; `onKey()` runs once one is entered. `rejected`: the last key was refused. */
export function showKeyForm(main, { rejected, onKey }) {
  document.title = "API key · verifact";
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-hint",
  });
  const form = h(
    "form",
    {
      class: "key-form",
      onsubmit: (ev) => {
        ev.preventDefault();
        const key = input.value.trim();
        if (key) {
          setApiKey(key);
          onKey();
        }
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      input,
      h("span", { class: "hint", id: "api-key-hint" }, "Kept in this tab only, until you forget it or close the tab."),
    ),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button button-primary" }, "Use this key")),
  );
  const note = rejected
    ? h("p", { class: "notice notice-error", role: "alert" }, "The server did not accept that key. Enter another one.")
    : h("p", { class: "muted" }, "This server needs an API key. You will see the runs made with your key only.");
  replace(main, h("h1", { class: "page-title", tabindex: "-1" }, "API key needed"), note, form);
  input.focus();
}

/** A "Forget key" button for the top bar, shown while a key is kept; `onForget()` runs after forgetting. */
export function forgetKeyButton(onForget) {
  const button = h(
    "button",
    {
      type: "button",
      class: "nav-link nav-button",
      onclick: () => {
        setApiKey("");
        announce("The API key is forgotten.");
        onForget();
      },
    },
    "Forget key",
  );
  const sync = () => {
    button.hidden = !apiKey();
  };
  window.addEventListener("verifact:key-changed", sync);
  sync();
  return button;
}
