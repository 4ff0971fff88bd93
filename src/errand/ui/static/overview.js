// #/overview: queue depth by status, agent and user, the oldest pending age, what runs now,
// per-agent throughput, failure rate and p50/p95 for the last hour, delivery health, workers.
// Refreshed every 2 s from GET /v1/admin/overview.

import { get, ApiError } from "./api.js";
import { throughputChart, failureChart, latencyChart } from "./charts.js";
import { clear, fmtAge, fmtPct, fmtSeconds, fmtTime, h, notice, progressBar, requestLink, row, section, table } from "./dom.js";
import { every } from "./live.js";

const STATUSES = ["pending", "processing", "input_required", "completed", "failed", "cancelled"];

export function render(main) {
  const body = h("div", { class: "grid" });
  const stamp = h("span", { class: "muted", id: "updated" });
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Overview" }), stamp), body);
  return every(
    2000,
    async () => {
      const o = await get("/v1/admin/overview");
      stamp.textContent = `updated ${fmtTime(o.generated_at)} · refreshes every 2 s`;
      draw(body, o);
    },
    (e) => {
      const missing = e instanceof ApiError && e.status === 404;
      const text = missing
        ? "This server has no GET /v1/admin/overview endpoint: the overview needs a newer errand."
        : `Could not refresh: ${e.text || e}`;
      stamp.replaceChildren(notice(text, "error"));
    },
  );
}

function draw(body, o) {
  const q = o.queue;
  const counts = h(
    "div",
    { class: "counts" },
    STATUSES.map((st) =>
      h(
        "a",
        { class: `count count-${st}`, href: `#/requests?status=${st}`, "data-count": st },
        h("span", { class: "n", text: String(q.by_status[st] ?? 0) }),
        h("span", { class: "label", text: st }),
      ),
    ),
    h(
      "div",
      { class: "count", "data-count": "oldest" },
      h("span", { class: "n", text: fmtAge(q.oldest_pending_age_seconds) }),
      h("span", { class: "label", text: "oldest pending" }),
    ),
  );
  const running = table(
    ["Request", "Agent", "User", "Worker", "Attempt", "Progress", "Started"],
    o.running.map((r) =>
      row([
        requestLink(r.request_id),
        r.agent || "—",
        r.user_id,
        h("span", { class: "mono", text: r.worker_id || "—" }),
        String(r.attempt),
        progressBar(r.progress, "processing"),
        fmtTime(r.started_at),
      ]),
    ),
    "Nothing is running.",
  );
  const perAgent = o.agents.map((a) =>
    h(
      "figure",
      { class: "agent-chart" },
      h(
        "figcaption",
        {},
        h("strong", { text: a.agent }),
        ` · ${a.completed} completed · ${a.failed} failed · ${fmtPct(a.failure_rate)} failed · p50 ${fmtSeconds(a.p50_seconds)} · p95 ${fmtSeconds(a.p95_seconds)}`,
      ),
      throughputChart(a.per_minute, o.generated_at, `Throughput of ${a.agent} per minute, last hour`),
    ),
  );
  const d = o.deliveries;
  const agentsCard = section(
    "Agents, last hour",
    o.agents.length === 0 ? notice("No request finished in the last hour.") : null,
    h("div", { class: "charts" }, perAgent),
    o.agents.length ? h("div", { class: "charts" }, figure("Failure rate", failureChart(o.agents)), figure("Duration p50 / p95", latencyChart(o.agents))) : null,
  );
  const workers = section(
    "Workers",
    table(
      // last_seen is a lease renewal: an idle worker has none, so its registration time is shown.
      ["Worker", "Host", "PID", "Registered", "Last seen", "Running"],
      o.workers.map((w) =>
        row([
          h("span", { class: "mono", text: w.worker_id }),
          w.host || "—",
          String(w.pid ?? "—"),
          fmtTime(w.started_at),
          h("span", { class: "last-seen", text: w.last_seen === null ? `idle · registered at ${fmtTime(w.started_at)}` : fmtTime(w.last_seen) }),
          String(w.running),
        ]),
      ),
      "No worker has reported in.",
    ),
  );
  const runningCard = section("Running now", running);
  for (const card of [runningCard, agentsCard, workers]) card.classList.add("wide");
  clear(
    body,
    section("Queue", counts),
    section(
      "Webhook deliveries",
      h(
        "dl",
        { class: "facts" },
        fact("deliveries pending", d.pending),
        fact("deliveries failed", d.failed, d.failed > 0 ? "#/failures" : null),
        fact("attempts delivered, last hour", d.delivered_last_hour),
        fact("attempts failed, last hour", d.failed_last_hour),
      ),
    ),
    runningCard,
    agentsCard,
    section(
      "Queue by agent",
      table(["Agent", "Pending", "Processing"], q.by_agent.map((a) => row([a.agent || "—", String(a.pending), String(a.processing)])), "The queue is empty."),
    ),
    section(
      "Queue by user (top 20)",
      table(["User", "Pending", "Processing"], q.by_user.map((u) => row([u.user_id, String(u.pending), String(u.processing)])), "The queue is empty."),
    ),
    workers,
  );
}

function figure(caption, svg) {
  return h("figure", { class: "agent-chart" }, h("figcaption", { text: caption }), svg);
}

function fact(label, value, href) {
  const v = href ? h("a", { href, text: String(value) }) : String(value);
  return [h("dt", { text: label }), h("dd", { "data-fact": label }, v)];
}

