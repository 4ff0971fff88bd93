// #/requests/<id>: status, live progress, input, result or error, the event timeline (content
// deltas folded into one text), every attempt with its traceback, webhook deliveries with
// their attempts and Redeliver, and Cancel while the request is not finished. Live from
// GET /v1/requests/{id}/events (EventSource: it resumes by Last-Event-ID by itself).

import { del, get, isAdmin, optional, post } from "./api.js";
import { askCard } from "./ask.js";
import { actionButton, badge, clear, fmtMs, fmtTime, h, notice, progressBar, row, section, table } from "./dom.js";
import { every } from "./live.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export async function render(main, params) {
  const id = params.get("id");
  const path = `/v1/requests/${encodeURIComponent(id)}`;
  const state = { path, doc: await get(path), text: "", stream: null, stopDeliveries: null, asked: undefined, note: null };
  const head = h("div", { class: "page-head" });
  const ask = h("div", { id: "ask-slot" });
  const summary = h("div", { class: "card", id: "summary" });
  const output = h("pre", { class: "output", id: "output", "aria-live": "polite" });
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  const attempts = h("div", { id: "attempts" });
  const deliveries = h("div", { id: "deliveries" });
  main.append(
    head,
    ask,
    summary,
    section("Output", output),
    section("Timeline", timeline),
    section("Attempts", attempts),
    section("Webhook deliveries", deliveries),
  );
  state.redrawSummary = async () => {
    state.doc = await get(path);
    drawHead(head, state.doc, path);
    drawSummary(summary, state.doc);
    drawAsk(ask, state);
  };
  const refresh = async () => {
    await state.redrawSummary();
    const [, busy] = await Promise.all([drawAttempts(attempts, path), drawDeliveries(deliveries, path, state)]);
    if (busy) watchDeliveries(deliveries, path, state);
  };
  await refresh();
  state.stream = follow(path, state, { head, output, timeline, refresh });
  return () => {
    if (state.stream) state.stream.close();
    if (state.stopDeliveries) state.stopDeliveries();
  };
}

// Redrawn as the status moves; Cancel's outcome (e.g. a viewer's 403) stays beside it.
function drawHead(head, doc, path) {
  const running = !TERMINAL.has(doc.status);
  const keep = head.querySelector(".action-result");
  const cancel = running
    ? actionButton(
        "Cancel",
        async () => {
          const r = await del(path);
          return `cancelled (${r.cancellation})`;
        },
        { readOnly: !isAdmin(), danger: true, testid: "cancel" },
      )
    : null;
  if (keep && cancel) cancel.querySelector(".action-result").replaceWith(keep);
  clear(
    head,
    h("h1", {}, "Request ", h("span", { class: "mono", text: doc.request_id })),
    badge(doc.status),
    h("span", { id: "live-progress" }, progressBar(doc.progress, doc.status)),
    cancel,
  );
}

// The question card, redrawn only when the outstanding question changes (not on every refresh,
// which would wipe an answer being typed); above it, what became of this page's last answer.
function drawAsk(slot, state) {
  const ask = state.doc.status === "input_required" ? state.doc.input_request : null;
  const key = ask ? ask.id : null;
  if (key === state.asked) return;
  state.asked = key;
  const noted = async (id, text, kind) => {
    state.note = notice(text, kind);
    state.note.id = id;
    await state.redrawSummary();
  };
  const onSent = (inputId) => noted("ask-sent", `Answer to ${inputId} sent: the request resumed.`, "info");
  const onStale = (text) => noted("ask-stale", `Not sent. ${text}`, "error");
  clear(slot, state.note, askCard(state.doc, state.path, { onSent, onStale }));
}

function drawSummary(card, doc) {
  const facts = [
    ["Status", badge(doc.status)],
    ["Agent", doc.agent || "—"],
    ["Kind", doc.trigger ? `${doc.kind} · trigger ${doc.trigger}` : doc.kind],
    ["User", doc.user_id],
    ["Session", doc.session_id || "—"],
    ["Created", fmtTime(doc.created_at)],
    ["Started", fmtTime(doc.started_at)],
    ["Finished", fmtTime(doc.completed_at)],
    ["Duration", fmtMs(doc.duration_ms)],
    ["Attempts", String(doc.attempts)],
    ["Delivery", deliveryText(doc.delivery)],
  ];
  const input = doc.input || null; // GET /v1/requests/{id}: what was submitted (none once purged)
  clear(
    card,
    h("h2", { text: "Summary" }),
    h("dl", { class: "facts wide" }, facts.map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", {}, v)))),
    h("h3", { text: "Input" }),
    input
      ? [
          h("pre", { class: "input", id: "input-message", text: String(input.message ?? "") }),
          h("h3", { text: "Metadata" }),
          Object.keys(input.metadata || {}).length
            ? h("pre", { class: "input", id: "input-metadata", text: JSON.stringify(input.metadata, null, 2) })
            : h("p", { class: "muted", id: "input-metadata", text: "none" }),
          h("p", { class: "muted", id: "input-settings", text: inputSettings(input) }),
        ]
      : notice("No input: it was purged with the result."),
    doc.result ? [h("h3", { text: "Result" }), h("pre", { class: "result", id: "result", text: resultText(doc.result) })] : null,
    doc.error
      ? [h("h3", { text: "Error" }), h("p", { class: "error-line", id: "error" }, h("strong", { text: doc.error.type }), `: ${doc.error.message}`, doc.error.retryable ? " (retryable)" : "")]
      : null,
  );
}

function inputSettings(input) {
  const parts = [`priority ${input.priority}`, `mode ${input.mode}`, `max attempts ${input.max_attempts}`];
  if (input.fairness_key) parts.push(`fairness key ${input.fairness_key}`);
  if (input.estimated_seconds !== null && input.estimated_seconds !== undefined) parts.push(`estimated ${input.estimated_seconds.toFixed(1)} s`);
  return parts.join(" · ");
}

const deliveryText = (d) => (typeof d === "string" ? d : d.mode === "webhook" ? `webhook · ${d.state} · ${d.attempts} attempt(s)` : d.mode);

function resultText(result) {
  const { text, ...rest } = result;
  return Object.keys(rest).length ? `${text}\n\n${JSON.stringify(rest, null, 2)}` : text;
}

async function drawAttempts(el, path) {
  const list = await get(`${path}/attempts`);
  clear(
    el,
    list.attempts.length === 0
      ? notice("No attempt has started yet.")
      : list.attempts.map((a) =>
          h(
            "article",
            { class: `attempt attempt-${a.outcome}`, "data-attempt": String(a.attempt) },
            h("h3", {}, `Attempt ${a.attempt} · `, h("span", { class: `badge badge-${a.outcome}`, text: a.outcome })),
            h("p", { class: "muted" }, `worker ${a.worker_id || "—"} · ${fmtTime(a.started_at)} → ${fmtTime(a.ended_at)} · ${fmtMs(a.duration_ms)}`),
            a.error ? h("p", { class: "error-line" }, h("strong", { text: a.error.type }), `: ${a.error.message}`) : null,
            a.traceback ? h("details", { open: true }, h("summary", { text: "Traceback" }), h("pre", { class: "traceback", text: a.traceback })) : null,
          ),
        ),
  );
}

async function drawDeliveries(el, path, state) {
  const doc = state.doc;
  const webhook = typeof doc.delivery === "string" ? doc.delivery === "webhook" : doc.delivery.mode === "webhook";
  if (!webhook) {
    clear(el, notice("Polling request: no webhook."));
    return false;
  }
  const list = await optional(`${path}/deliveries`);
  const items = list ? list.deliveries : [];
  const redeliver = TERMINAL.has(doc.status)
    ? actionButton(
        "Redeliver",
        async () => {
          const r = await post(`${path}/redeliver`);
          watchDeliveries(el, path, state);
          return `queued ${r.delivery.webhook_id}`;
        },
        { readOnly: !isAdmin(), testid: "redeliver" },
      )
    : null;
  const keep = el.querySelector(".action-result");
  clear(
    el,
    items.length === 0 ? notice("No delivery yet: the webhook is sent when the request finishes.") : null,
    items.map((d) =>
      h(
        "article",
        { class: `delivery delivery-${d.state}`, "data-webhook": d.webhook_id },
        h("h3", {}, h("span", { class: "mono", text: d.webhook_id }), " ", h("span", { class: `badge badge-${d.state}`, text: d.state })),
        h("p", { class: "muted mono", text: d.url }),
        table(
          ["#", "At", "HTTP status", "Error", "Took"],
          d.attempts.map((a) => row([String(a.attempt), fmtTime(a.at), a.status_code === null ? "—" : String(a.status_code), a.error || "—", fmtMs(a.duration_ms)])),
          d.next_attempt_at ? `First attempt at ${fmtTime(d.next_attempt_at)}.` : "No attempt yet.",
        ),
      ),
    ),
    redeliver,
  );
  if (keep && redeliver) redeliver.querySelector(".action-result").replaceWith(keep);
  return items.some((d) => d.state === "pending" || d.state === "retrying");
}

// While a delivery is pending or retrying, its attempts are re-read every 1.5 s.
function watchDeliveries(el, path, state) {
  if (state.stopDeliveries) return;
  state.stopDeliveries = every(1500, async () => {
    if (!(await drawDeliveries(el, path, state)) && state.stopDeliveries) {
      state.stopDeliveries();
      state.stopDeliveries = null;
      await state.redrawSummary(); // the summary's delivery state follows
    }
  });
}

// The event stream: a timeline whose consecutive content deltas (and progress reports) fold
// into one entry, the output text, and the header's progress bar.
function follow(path, state, { head, output, timeline, refresh }) {
  const es = new EventSource(`${path}/events`);
  let run = {}; // the entries of the current run of progress and content events, by type
  const entry = (type, text) => {
    const li = h("li", { class: `ev ev-${type}`, "data-event": type }, h("span", { class: "ev-type", text: type }), h("span", { class: "ev-text", text }));
    timeline.append(li);
    return li;
  };
  const folded = (type, text) => {
    const e = run[type] || (run[type] = { li: entry(type, ""), count: 0 });
    e.count += 1;
    e.li.querySelector(".ev-text").textContent = text(e.count);
  };
  const on = (type, fn) => es.addEventListener(type, (m) => fn(JSON.parse(m.data)));
  on("content", (d) => {
    state.text += d.text || "";
    output.textContent = state.text;
    folded("content", (n) => `${n} ${n === 1 ? "delta" : "deltas folded"} · ${state.text.length} characters (see Output)`);
  });
  on("progress", (d) => {
    const bar = head.querySelector("#live-progress");
    if (bar) bar.replaceChildren(progressBar(d, "processing"));
    const text = `${d.percent ?? "?"} %${d.message ? ` · ${d.message}` : ""}`;
    folded("progress", (n) => (n === 1 ? text : `${text} (latest of ${n} reports)`));
  });
  for (const type of ["created", "started", "retry", "routed"]) {
    on(type, (d) => {
      run = {};
      entry(type, summarize(d));
      if (type === "started") state.redrawSummary().catch(() => {}); // the status badge follows
    });
  }
  // a question asked (the form appears) or answered (by this page or anyone: it goes)
  on("input_required", (d) => {
    run = {};
    entry("input_required", d.input_request ? `asks: ${d.input_request.prompt}` : summarize(d));
    state.redrawSummary().catch(() => {});
  });
  on("input_received", (d) => {
    run = {};
    entry("input_received", `answer to ${d.input_id} · ${d.status}`);
    state.redrawSummary().catch(() => {});
  });
  for (const type of TERMINAL) {
    on(type, (d) => {
      run = {};
      entry(type, `${fmtTime(d.completed_at)}${d.error ? ` · ${d.error.type}: ${d.error.message}` : ""}`);
      es.close();
      refresh().catch(() => {});
    });
  }
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) timeline.append(h("li", { class: "ev" }, notice("The event stream closed; reload to follow again.", "error")));
  };
  return es;
}

function summarize(d) {
  const parts = [];
  for (const [k, v] of Object.entries(d || {})) {
    if (k === "at" || v === null || typeof v === "object") continue;
    parts.push(`${k} ${v}`);
  }
  return parts.join(" · ");
}
