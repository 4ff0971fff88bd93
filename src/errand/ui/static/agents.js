// #/agents: the formation's agents with last-hour stats, its triggers with a fire form, and
// the schedules with pause / resume / run now (when this server has /v1/schedules).

import { ApiError, get, isAdmin, optional, patch, post } from "./api.js";
import { actionButton, clear, fmtPct, fmtSeconds, fmtTime, h, notice, requestLink, row, section, table } from "./dom.js";

export async function render(main) {
  const [agents, triggers, schedules, overview] = await Promise.all([
    get("/v1/agents"),
    get("/v1/triggers"),
    optional("/v1/schedules").catch((e) => ({ error: e })),
    optional("/v1/admin/overview").catch(() => null),
  ]);
  const stats = new Map(((overview && overview.agents) || []).map((a) => [a.agent, a]));
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Agents, triggers & schedules" })),
    section("Agents", agentTable(agents.agents, stats)),
    section("Triggers", triggerList(triggers.triggers)),
    section("Schedules", scheduleList(schedules)),
  );
  return null;
}

function agentTable(agents, stats) {
  return table(
    ["Agent", "Kind", "Default", "Tools", "Expected", "Last hour", "Failure rate", "p50 / p95"],
    agents.map((a) => {
      const s = stats.get(a.id);
      return row([
        h("span", {}, h("strong", { text: a.id }), a.description ? h("div", { class: "muted", text: a.description }) : null),
        a.kind,
        a.default ? "yes" : "",
        a.tools.join(", ") || "—",
        a.expected_seconds === null ? `— (${a.history_samples} runs)` : `${fmtSeconds(a.expected_seconds)} (${a.history_samples} runs)`,
        s ? `${s.completed} ok · ${s.failed} failed` : "—",
        s ? fmtPct(s.failure_rate) : "—",
        s ? `${fmtSeconds(s.p50_seconds)} / ${fmtSeconds(s.p95_seconds)}` : "—",
      ]);
    }),
    "No agent configured.",
  );
}

function triggerList(triggers) {
  if (triggers.length === 0) return notice("No trigger: add triggers/<name>.md to the formation.");
  return triggers.map((t) => {
    const data = h("textarea", { id: `t-${t.name}-data`, name: "data", rows: "4", spellcheck: "false" });
    data.value = JSON.stringify(Object.fromEntries(t.fields.map((f) => [f, ""])), null, 2);
    const useAsync = h("input", { id: `t-${t.name}-async`, type: "checkbox", name: "use_async", checked: t.use_async !== false });
    const out = h("div", { class: "action-result", role: "status", "aria-live": "polite" });
    const fire = h("button", { type: "submit", class: "primary", text: "Fire", disabled: !isAdmin(), title: isAdmin() ? null : "Read-only: a viewer key cannot fire triggers" });
    const form = h(
      "form",
      { class: "trigger-form", "data-trigger": t.name },
      h("label", { for: data.id, text: "data (JSON)" }),
      data,
      h("label", { class: "inline" }, useAsync, " run in the background"),
      fire,
      out,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      out.className = "action-result";
      let body;
      try {
        body = { data: JSON.parse(data.value || "{}"), use_async: useAsync.checked };
      } catch (err) {
        out.textContent = `Not JSON: ${err.message}`;
        out.classList.add("err");
        return;
      }
      try {
        const r = await post(`/v1/triggers/${encodeURIComponent(t.name)}`, body);
        clear(out, "Fired: ", requestLink(r.request_id), ` (${r.status})`);
        out.classList.add("ok");
      } catch (err) {
        out.textContent = err.text || String(err);
        out.classList.add("err");
      }
    });
    return h(
      "article",
      { class: "trigger" },
      h("h3", { class: "mono", text: t.name }),
      h("p", { text: t.description || "" }),
      h("p", { class: "muted", text: `fields: ${t.fields.join(", ") || "none"} · agent: ${t.agent || "default"} · ${t.use_async === false ? "sync" : "async"}` }),
      form,
    );
  });
}

function scheduleList(answer) {
  if (answer === null) return notice("This server has no /v1/schedules: schedules need a newer errand.");
  if (answer.error) return notice(answer.error instanceof ApiError ? answer.error.text : String(answer.error), "error");
  const wrap = h("div", {});
  const draw = (schedules) =>
    clear(
      wrap,
      table(
        ["Schedule", "When", "Target", "Enabled", "Next", "Last", "Failures", ""],
        schedules.map((s) =>
          row(
            [
              h("strong", { text: s.name || s.id }),
              s.cron ? `cron ${s.cron}${s.timezone ? ` (${s.timezone})` : ""}` : s.every ? `every ${fmtSeconds(s.every)}` : "—",
              s.trigger ? `trigger ${s.trigger}` : `agent ${s.agent || "default"}`,
              s.enabled ? "yes" : "paused",
              fmtTime(s.next_fire_at),
              s.last_request_id ? requestLink(s.last_request_id) : "—",
              String(s.consecutive_failures ?? 0),
              h(
                "span",
                { class: "actions" },
                actionButton(s.enabled ? "Pause" : "Resume", async () => {
                  await patch(`/v1/schedules/${encodeURIComponent(s.id)}`, { enabled: !s.enabled });
                  draw((await get("/v1/schedules")).schedules);
                  return "";
                }, { readOnly: !isAdmin() }),
                actionButton("Run now", async () => {
                  const r = await post(`/v1/schedules/${encodeURIComponent(s.id)}/run`);
                  return `fired ${r.request_id}`;
                }, { readOnly: !isAdmin() }),
              ),
            ],
            { "data-schedule": s.id },
          ),
        ),
        "No schedule.",
      ),
    );
  draw(answer.schedules);
  return wrap;
}
