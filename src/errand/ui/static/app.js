// The console's entry: the session check, sign-in, the layout and a tiny hash router.
// Each page is `render(main, params) -> cleanup`; the router runs the cleanup (timers, event
// streams) before the next page renders.

import { ApiError, currentSession, loadSession, signIn, signOut } from "./api.js";
import { clear, h, notice } from "./dom.js";
import * as agents from "./agents.js";
import * as detail from "./detail.js";
import * as failures from "./failures.js";
import * as overview from "./overview.js";
import * as requests from "./requests.js";

const ROUTES = [
  [/^\/overview$/, overview.render, "overview"],
  [/^\/requests$/, requests.render, "requests"],
  [/^\/requests\/([^/]+)$/, detail.render, "requests"],
  [/^\/failures$/, failures.render, "failures"],
  [/^\/agents$/, agents.render, "agents"],
];
const NAV = [
  ["overview", "Overview"],
  ["requests", "Requests"],
  ["failures", "Failures & deliveries"],
  ["agents", "Agents & triggers"],
];

const root = document.getElementById("app");
let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/overview";
  const [path, qs] = raw.split("?", 2);
  return { path, params: new URLSearchParams(qs || "") };
}

function layout(active) {
  const s = currentSession();
  const main = h("main", { id: "main", tabindex: "-1" });
  const nav = h(
    "nav",
    { "aria-label": "Console" },
    h(
      "ul",
      {},
      NAV.map(([id, label]) =>
        h("li", {}, h("a", { href: `#/${id}`, "aria-current": id === active ? "page" : null, text: label })),
      ),
    ),
  );
  const out = h("button", { type: "button", class: "link", id: "sign-out", text: "Sign out" });
  out.addEventListener("click", async () => {
    try {
      await signOut();
    } finally {
      showSignIn("Signed out.");
    }
  });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "skip", href: "#main", text: "Skip to content", on: { click: skip } }),
    h("a", { class: "brand", href: "#/overview", text: "errand" }),
    nav,
    h(
      "div",
      { class: "who" },
      h("span", { class: `role role-${s.role}`, id: "role", text: s.role }),
      s.role === "viewer" ? h("span", { class: "muted", text: "read-only" }) : null,
      out,
    ),
  );
  clear(root, header, main);
  return main;
}

function skip(e) {
  e.preventDefault();
  document.getElementById("main").focus();
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (currentSession() === null) return showSignIn();
  const { path, params } = parseHash();
  for (const [re, render, active] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    const main = layout(active);
    if (m[1] !== undefined) params.set("id", decodeURIComponent(m[1]));
    try {
      cleanup = (await render(main, params)) || null;
    } catch (e) {
      main.append(notice(e instanceof ApiError ? e.text : String(e), "error"));
    }
    return;
  }
  location.hash = "#/overview";
}

function showSignIn(message) {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const key = h("input", {
    id: "key",
    name: "key",
    type: "password",
    autocomplete: "current-password",
    required: true,
    minlength: "8",
  });
  const status = h("p", { class: "form-status", role: "alert" });
  const form = h(
    "form",
    { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", text: "errand console" }),
    h("p", { class: "muted", text: "Sign in with an admin key, or a viewer key for read-only access." }),
    h("label", { for: "key", text: "API key" }),
    key,
    h("button", { type: "submit", id: "sign-in", class: "primary", text: "Sign in" }),
    status,
  );
  if (message) status.textContent = message;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "Signing in…";
    try {
      await signIn(key.value);
      key.value = "";
      if (!location.hash || location.hash === "#/") location.hash = "#/overview";
      await route();
    } catch (err) {
      status.textContent =
        err instanceof ApiError && err.status === 403
          ? "This key cannot sign in to the console: use an admin or a viewer key."
          : err instanceof ApiError && err.status === 401
            ? "Wrong key."
            : err.text || String(err);
    }
  });
  clear(root, h("main", { id: "main", class: "center" }, form));
  key.focus();
}

window.addEventListener("hashchange", route);
window.addEventListener("errand:signed-out", () => showSignIn("Your session ended; sign in again."));

(async () => {
  try {
    await loadSession();
  } catch {
    clear(root, notice("The server does not answer.", "error"));
    return;
  }
  await route();
})();
