// Small DOM helpers: an element builder, formatters, status badges, progress bars, dialogs.
// Nothing here writes HTML strings: every text goes in as a text node.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "—";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "—";
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

export const fmtMs = (ms) => (ms === null || ms === undefined ? "—" : fmtSeconds(ms / 1000));
export const fmtPct = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)} %`);

export function badge(status) {
  return h("span", { class: `badge badge-${status}`, "data-status": status, text: status });
}

export function progressBar(progress, status) {
  const pct = progress && typeof progress.percent === "number" ? progress.percent : null;
  if (pct === null && (status === "failed" || status === "cancelled")) return h("span", { class: "muted", text: "—" });
  const done = status === "completed";
  const value = done ? 100 : pct;
  const bar = h("progress", { max: "100", class: "bar", "aria-label": "progress" });
  if (value !== null) bar.value = value;
  const idle = { processing: "running", input_required: "waiting for input" }[status] || "";
  const label = value === null ? idle : `${Math.round(value)} %`;
  const msg = progress && progress.message && !done ? ` · ${progress.message}` : "";
  return h("span", { class: "progress" }, bar, h("span", { class: "progress-label", text: label + msg }));
}

export function requestLink(id) {
  return h("a", { href: `#/requests/${encodeURIComponent(id)}`, class: "mono", text: id });
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status", text });
}

export function table(headers, rows, empty = "Nothing here.") {
  if (rows.length === 0) return notice(empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows),
    ),
  );
}

export function row(cells, attrs) {
  return h("tr", attrs || {}, cells.map((c) => h("td", {}, c)));
}

export function section(title, ...body) {
  return h("section", { class: "card" }, h("h2", { text: title }), body);
}

// A modal confirmation; resolves true when the operator confirms.
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const ok = h("button", { type: "button", class: "danger", text: confirmLabel });
    const no = h("button", { type: "button", text: "Keep them" });
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title", text: title }),
      h("p", { class: "confirm-text", text }),
      h("div", { class: "actions" }, no, ok),
    );
    const done = (answer) => {
      dlg.close();
      dlg.remove();
      resolve(answer);
    };
    ok.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

// A button that runs an action, shows its outcome beside it, and is disabled while it runs.
// Viewers get it disabled (the server would refuse anyway).
export function actionButton(label, run, { readOnly = false, danger = false, testid } = {}) {
  const out = h("span", { class: "action-result", role: "status", "aria-live": "polite" });
  const btn = h("button", {
    type: "button",
    class: danger ? "danger" : "",
    text: label,
    "data-testid": testid,
    title: readOnly ? "Read-only: a viewer key cannot change anything" : null,
  });
  btn.disabled = readOnly;
  btn.addEventListener("click", async () => {
    // A page that redraws keeps the outcome element it had (detail.js): write to the one now
    // beside this button, else to this button's own (a redrawn page carries that one on).
    const shown = btn.parentNode?.querySelector(".action-result") ?? out;
    btn.disabled = true;
    shown.className = "action-result";
    shown.textContent = "…";
    try {
      const text = await run();
      shown.textContent = text || "done";
      shown.classList.add("ok");
    } catch (e) {
      shown.textContent = e.text || String(e);
      shown.classList.add("err");
    } finally {
      btn.disabled = readOnly;
    }
  });
  return h("span", { class: "action" }, btn, out);
}
