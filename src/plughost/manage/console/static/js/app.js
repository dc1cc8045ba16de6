// The console's shell: sign-in, navigation, theme, and the live event stream pages listen to.
// Pages are modules in ./pages/ exporting `render(root, context)`, which may return a cleanup
// function (called when the page is left).

import { ApiError, auth, get, session } from "./api.js";
import { follow } from "./stream.js";
import { fill, h } from "./ui.js";

const PAGES = {
  overview: "./pages/overview.js",
  plugins: "./pages/plugins.js",
  plugin: "./pages/plugin.js",
  market: "./pages/market.js",
  chat: "./pages/chat.js",
  commands: "./pages/commands.js",
  events: "./pages/events.js",
};
const THEME = "plughost.theme";

const main = document.getElementById("main");
const header = document.querySelector("header.top");
/** Plugin events as they happen: `live.addEventListener("event", e => e.detail)`. */
const live = new EventTarget();
let stream = null;
let signedIn = false; // a key was accepted: a later 401 means it was changed or revoked
let cleanup = null;
let rendering = 0;

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function currentTheme() {
  return (
    document.documentElement.dataset.theme ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")
  );
}

function signIn(message) {
  signedIn = false;
  stopLive();
  header.hidden = true;
  const input = h("input", {
    id: "key",
    type: "password",
    name: "key",
    autocomplete: "current-password",
    required: true,
    placeholder: "management key",
  });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message ?? "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "login card",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        session.key = input.value.trim();
        try {
          await get("/api/v1/status");
          signedIn = true;
          if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
          await route();
        } catch (failure) {
          session.key = null;
          error.hidden = false;
          error.textContent =
            failure instanceof ApiError && failure.status === 401
              ? "That key is wrong. The key is printed by `plughost run` (by default in .plughost/manage.key)."
              : failure.message;
          button.disabled = false;
          input.focus();
        }
      },
    },
    h("h1", {}, "plughost"),
    h("label", { for: "key" }, "Management key"),
    input,
    error,
    button,
    h("p", { class: "hint" }, "The key stays in this tab's session storage and goes only to this host."),
  );
  fill(main, form);
  input.focus();
}

function startLive() {
  if (stream) return;
  const indicator = document.querySelector(".live");
  stream = follow("/api/v1/events/stream", {
    event: (item) => live.dispatchEvent(new CustomEvent("event", { detail: item })),
    missed: (count) => live.dispatchEvent(new CustomEvent("missed", { detail: count })),
    state: (state) => {
      indicator.dataset.live = state;
      indicator.title = `live updates: ${state}`;
    },
    unauthorized: () => auth.dispatchEvent(new CustomEvent("unauthorized")),
  });
}

function stopLive() {
  stream?.close();
  stream = null;
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = parts[0] || "overview";
  const id = parts.slice(1).join("/");
  // #/plugins/<id> is a plugin's page; #/plugin/<id>, typed by hand, is taken for it too
  if (name === "plugins" || name === "plugin") {
    return id ? { name: "plugin", params: { id } } : { name: "plugins", params: {} };
  }
  return { name, params: {} };
}

async function route() {
  if (!session.key) {
    signIn();
    return;
  }
  signedIn = true; // a key from this tab's session: the first 401 sends us back to sign-in
  header.hidden = false;
  startLive();
  const { name, params } = parseHash();
  const module = PAGES[name];
  for (const link of document.querySelectorAll("nav a")) {
    const target = link.getAttribute("href").slice(2);
    link.toggleAttribute("aria-current", target === name || (name === "plugin" && target === "plugins"));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  closeMenu();
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const ticket = ++rendering;
  if (!module) {
    fill(main, h("section", { class: "card" }, h("h1", {}, "Not found"), h("p", {}, `No page “${name}”.`)));
    return;
  }
  const root = h("section", { class: "page", dataset: { page: name } });
  fill(main, root);
  try {
    const page = await import(module);
    if (ticket !== rendering) return;
    const done = await page.render(root, { params, live });
    if (ticket !== rendering) done?.();
    else cleanup = done ?? null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    fill(root, h("div", { class: "card error", role: "alert" }, `This page failed to load: ${error.message}`));
  }
}

function closeMenu() {
  document.querySelector(".menu-toggle").setAttribute("aria-expanded", "false");
  document.getElementById("nav").classList.remove("open");
}

auth.addEventListener("unauthorized", () => {
  if (!signedIn) return;
  session.key = null;
  signIn("The host no longer accepts this key. Sign in again.");
});
document.querySelector(".logout").addEventListener("click", () => {
  session.key = null;
  location.hash = "#/overview";
  signIn();
});
document.querySelector(".theme-toggle").addEventListener("click", () => {
  const next = currentTheme() === "dark" ? "light" : "dark";
  localStorage.setItem(THEME, next);
  applyTheme(next);
});
document.querySelector(".menu-toggle").addEventListener("click", (event) => {
  const open = event.currentTarget.getAttribute("aria-expanded") !== "true";
  event.currentTarget.setAttribute("aria-expanded", String(open));
  document.getElementById("nav").classList.toggle("open", open);
});
window.addEventListener("hashchange", route);
applyTheme(localStorage.getItem(THEME));
route();
