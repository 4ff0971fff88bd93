// #/requests: the request table with filters (status, agent, user, kind, time range), search
// by id, cursor pagination over GET /v1/requests, statuses and progress refreshed every 3 s.
// The filters live in the hash (#/requests?status=failed&agent=x), so a view can be shared.

import { ApiError, get } from "./api.js";
import { badge, clear, fmtMs, fmtTime, h, notice, progressBar, requestLink, row, table } from "./dom.js";
import { every } from "./live.js";

export const FILTERS = ["status", "agent", "user_id", "kind", "since", "until"];
const STATUSES = ["pending", "processing", "input_required", "completed", "failed", "cancelled"];
const KINDS = ["chat", "trigger", "schedule"];

export function filterOf(params) {
  const f = {};
  for (const k of FILTERS) if (params.get(k)) f[k] = params.get(k);
  return f;
}

export async function render(main, params) {
  const filter = filterOf(params);
  const agentList = await get("/v1/agents").catch(() => ({ agents: [] }));
  const form = filterForm(filter, agentList.agents.map((a) => a.id));
  const results = h("div", { id: "results" });
  const pager = h("div", { class: "pager" });
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Requests" })), searchForm(), form, results, pager);
  const cursors = [null]; // the cursor of each page seen so far; the last is the current page
  let page = null;
  let latest = 0; // a slower answer for a page left behind is dropped
  const load = async () => {
    const mine = ++latest;
    const fresh = await get("/v1/requests", { ...filter, limit: 25, cursor: cursors[cursors.length - 1] });
    if (mine !== latest) return;
    const same = page && sameIds(page.requests, fresh.requests) && results.querySelector("table");
    page = fresh;
    if (same) patchRows(results, page.requests); // in place: focus and scroll stay put
    else clear(results, requestTable(page.requests));
    drawPager();
  };
  const drawPager = () => {
    const prev = h("button", { type: "button", text: "← Newer", id: "prev-page" });
    prev.disabled = cursors.length === 1;
    prev.addEventListener("click", () => {
      cursors.pop();
      load().catch(show);
    });
    const next = h("button", { type: "button", text: "Older →", id: "next-page" });
    next.disabled = !page.next_cursor;
    next.addEventListener("click", () => {
      cursors.push(page.next_cursor);
      load().catch(show);
    });
    clear(pager, prev, h("span", { class: "muted", text: `page ${cursors.length}` }), next);
  };
  const show = (e) => clear(results, notice(e.text || String(e), "error"));
  return every(3000, load, show);
}

const sameIds = (a, b) => a.length === b.length && a.every((r, i) => r.request_id === b[i].request_id);

function patchRows(results, requests) {
  const rows = results.querySelectorAll("tbody tr");
  requests.forEach((r, i) => {
    const cells = rows[i].children;
    cells[1].replaceChildren(badge(r.status));
    cells[6].textContent = fmtMs(r.duration_ms);
    cells[7].replaceChildren(progressBar(r.progress, r.status));
  });
}

export function requestTable(requests) {
  return table(
    ["Request", "Status", "Agent", "User", "Kind", "Created", "Duration", "Progress"],
    requests.map((r) =>
      row(
        [
          requestLink(r.request_id),
          badge(r.status),
          r.agent || "—",
          r.user_id,
          r.trigger ? `${r.kind} · ${r.trigger}` : r.kind,
          fmtTime(r.created_at),
          fmtMs(r.duration_ms),
          progressBar(r.progress, r.status),
        ],
        { "data-request": r.request_id },
      ),
    ),
    "No request matches.",
  );
}

function select(name, label, values, current) {
  const el = h(
    "select",
    { id: `f-${name}`, name },
    h("option", { value: "", text: "any" }),
    values.map((v) => h("option", { value: v, text: v, selected: v === current })),
  );
  return h("div", { class: "field" }, h("label", { for: `f-${name}`, text: label }), el);
}

function input(name, label, value, type = "text") {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}`, text: label }),
    h("input", { id: `f-${name}`, name, type, value: value || "" }),
  );
}

const toLocal = (epoch) => {
  if (!epoch) return "";
  const d = new Date(Number(epoch) * 1000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

function filterForm(filter, agentIds) {
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filters" },
    select("status", "Status", STATUSES, filter.status),
    select("agent", "Agent", agentIds, filter.agent),
    input("user_id", "User", filter.user_id),
    select("kind", "Kind", KINDS, filter.kind),
    input("since", "Created after", toLocal(filter.since), "datetime-local"),
    input("until", "Created before", toLocal(filter.until), "datetime-local"),
    h("div", { class: "field buttons" }, h("button", { type: "submit", text: "Apply" }), h("a", { href: "#/requests", class: "button", text: "Clear" })),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) {
      if (!v) continue;
      q.set(k, k === "since" || k === "until" ? String(Math.floor(new Date(v).getTime() / 1000)) : v);
    }
    location.hash = `#/requests${q.toString() ? `?${q}` : ""}`;
  });
  return form;
}

function searchForm() {
  const field = h("input", { id: "search-id", name: "id", type: "search", placeholder: "req_…", required: true });
  const status = h("span", { class: "action-result", role: "status" });
  const form = h(
    "form",
    { class: "search", role: "search" },
    h("label", { for: "search-id", text: "Find a request by id" }),
    field,
    h("button", { type: "submit", text: "Open" }),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = field.value.trim();
    try {
      const doc = await get(`/v1/requests/${encodeURIComponent(id)}`);
      location.hash = `#/requests/${encodeURIComponent(doc.request_id)}`;
    } catch (err) {
      status.textContent = err instanceof ApiError && err.status === 404 ? `No request ${id}.` : err.text || String(err);
      status.className = "action-result err";
    }
  });
  return form;
}
