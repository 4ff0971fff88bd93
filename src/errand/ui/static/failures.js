// #/failures: failed requests and failed webhook deliveries across requests, with bulk cancel
// of a filtered set of unfinished requests and bulk redeliver of the failed deliveries. A bulk
// action first asks the server how many it matches (dry run), shows that count in a
// confirmation, then runs with `expect` set to it: if the set changed meanwhile the server
// answers 409 and nothing runs.

import { ApiError, get, isAdmin, optional, post } from "./api.js";
import { actionButton, clear, confirmDialog, fmtTime, h, notice, requestLink, row, section, table } from "./dom.js";
import { requestTable } from "./requests.js";

export async function render(main) {
  const failed = h("div", { id: "failed-requests" });
  const deliveries = h("div", { id: "failed-deliveries" });
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Failures & deliveries" })),
    section("Failed requests", h("p", {}, h("a", { href: "#/requests?status=failed", text: "All failed requests, with filters →" })), failed),
    section("Failed webhook deliveries", deliveries),
    section("Bulk cancel", bulkCancel()),
  );
  const load = async () => {
    const page = await get("/v1/requests", { status: "failed", limit: 20 });
    clear(failed, requestTable(page.requests));
    await drawDeliveries(deliveries, load);
  };
  await load();
  return null;
}

async function drawDeliveries(el, reload) {
  const list = await optional("/v1/admin/deliveries", { state: "failed", limit: 50 });
  if (list === null) {
    clear(el, notice("This server has no GET /v1/admin/deliveries endpoint: open a request to see its deliveries.", "error"));
    return;
  }
  const bulk = actionButton(
    "Redeliver all failed…",
    async () => {
      const filter = { state: "failed" };
      const { matched } = await post("/v1/admin/deliveries/redeliver", { filter, dry_run: true });
      if (matched === 0) return "no failed delivery";
      if (!(await confirmDialog("Redeliver webhooks", `Send ${matched} failed webhook deliveries again?`, `Redeliver ${matched}`))) return "kept";
      const r = await post("/v1/admin/deliveries/redeliver", { filter, dry_run: false, expect: matched });
      reload().catch(() => {});
      return `${r.redelivered} redelivered, ${r.skipped} skipped`;
    },
    { readOnly: !isAdmin(), testid: "bulk-redeliver" },
  );
  clear(
    el,
    table(
      ["Request", "Webhook", "URL", "Attempts", "Last status", "Created", ""],
      list.deliveries.map((d) => {
        const last = d.attempts[d.attempts.length - 1];
        return row([
          requestLink(d.request_id),
          h("span", { class: "mono", text: d.webhook_id }),
          h("span", { class: "mono url", text: d.url }),
          String(d.attempts.length),
          last ? (last.status_code === null ? last.error || "—" : String(last.status_code)) : "—",
          fmtTime(d.created_at),
          actionButton("Redeliver", async () => {
            await post(`/v1/requests/${encodeURIComponent(d.request_id)}/redeliver`);
            return "queued";
          }, { readOnly: !isAdmin() }),
        ]);
      }),
      "No failed delivery.",
    ),
    list.deliveries.length ? bulk : null,
  );
}

function bulkCancel() {
  const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: `bc-${name}`, text: label }), control);
  const sel = (name, values) => h("select", { id: `bc-${name}`, name }, values.map((v) => h("option", { value: v, text: v || "any" })));
  const text = (name) => h("input", { id: `bc-${name}`, name, type: "text" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Bulk cancel filter" },
    field("status", "Status", sel("status", ["", "pending", "processing"])),
    field("agent", "Agent", text("agent")),
    field("user_id", "User", text("user_id")),
    field("kind", "Kind", sel("kind", ["", "chat", "trigger", "schedule"])),
  );
  const run = actionButton(
    "Cancel matching…",
    async () => {
      const filter = {};
      for (const [k, v] of new FormData(form).entries()) if (v) filter[k] = v;
      const { matched } = await post("/v1/admin/requests/cancel", { filter, dry_run: true });
      if (matched === 0) return "nothing unfinished matches";
      if (!(await confirmDialog("Cancel requests", `Cancel ${matched} unfinished request(s) matching this filter?`, `Cancel ${matched}`))) return "kept";
      try {
        const r = await post("/v1/admin/requests/cancel", { filter, dry_run: false, expect: matched });
        const more = r.remaining ? ` · ${r.remaining} more match: run it again` : "";
        return `${r.cancelled} cancelled, ${r.skipped} skipped${more}`;
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) return "The matching set changed since the count: nothing was cancelled; try again.";
        throw e;
      }
    },
    { readOnly: !isAdmin(), danger: true, testid: "bulk-cancel" },
  );
  return [h("p", { class: "muted", text: "Cancels every pending or running request that matches (at most 1,000 a run), after showing how many." }), form, run];
}
