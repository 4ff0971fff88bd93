// The question a paused request (status input_required) waits on, and the form that answers
// it: POST /v1/requests/{id}/input {input_id, value}. A schema-less or string question takes a
// line of text; any other schema takes JSON, parsed here first so a typo never reaches the
// server. The server's refusals (422 schema, 409 not outstanding) are shown as it words them.
// A viewer sees the question and a disabled form: the server would answer 403 anyway.

import { isAdmin, post } from "./api.js";
import { fmtAge, fmtTime, h } from "./dom.js";

// Whether an answer is a plain string (a text field) rather than JSON (a textarea).
const textual = (schema) => schema === null || schema === undefined || schema.type === "string";

// The card for `doc.input_request`, or null when the request waits on nothing. `onSent(id)`
// runs after the server accepted the answer (the page then follows the resumption);
// `onStale(text)` after a 409 (answered or ended meanwhile: the page re-reads the request).
export function askCard(doc, path, { onSent, onStale }) {
  const ask = doc.status === "input_required" ? doc.input_request : null;
  if (!ask) return null;
  const readOnly = !isAdmin();
  const asText = textual(ask.schema);
  const field = asText
    ? h("input", { type: "text", id: "ask-value", name: "value", autocomplete: "off", required: true })
    : h("textarea", { id: "ask-value", name: "value", rows: "6", spellcheck: "false", placeholder: example(ask.schema) });
  const status = h("p", { class: "form-status", id: "ask-status", role: "alert" });
  const send = h("button", { type: "submit", class: "primary", text: "Send answer", "data-testid": "send-input" });
  field.disabled = readOnly;
  send.disabled = readOnly;
  const form = h(
    "form",
    { class: "ask-form", id: "ask-form", "data-input": ask.id, novalidate: true },
    h("label", { for: "ask-value", text: asText ? "Answer (text)" : "Answer (JSON)" }),
    field,
    h("div", { class: "actions" }, send, readOnly ? h("span", { class: "muted", text: "Read-only: a viewer key cannot answer." }) : null),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = asText ? typed(field.value, status) : parsed(field.value, status);
    if (value === undefined) return;
    send.disabled = true;
    status.className = "form-status busy";
    status.textContent = "Sending…";
    try {
      const r = await post(`${path}/input`, { input_id: ask.id, value });
      status.classList.add("ok");
      status.textContent = r.accepted ? `Answer accepted: the request is ${r.status} and resumes.` : "This answer was already given.";
      field.disabled = true;
      await onSent(ask.id);
    } catch (err) {
      status.className = "form-status";
      status.textContent = refusal(err);
      send.disabled = readOnly;
      if (err.status === 409) await onStale(status.textContent);
    }
  });
  return h(
    "section",
    { class: "card ask", id: "ask", "aria-labelledby": "ask-title" },
    h("h2", { id: "ask-title", text: "Input required" }),
    h("p", { class: "ask-prompt", id: "ask-prompt", text: ask.prompt }),
    h("p", { class: "muted", id: "ask-expires", text: expiry(ask.expires_at) }),
    ask.schema ? h("details", {}, h("summary", { text: "Schema the answer must satisfy" }), h("pre", { id: "ask-schema", text: JSON.stringify(ask.schema, null, 2) })) : null,
    form,
  );
}

function expiry(at) {
  if (at === null || at === undefined) return "No deadline: it waits until answered or cancelled.";
  const left = at - Date.now() / 1000;
  return left > 0 ? `Expires ${fmtTime(at)} (in ${fmtAge(left)}).` : `Expired ${fmtTime(at)}: it ends at the next expiry check.`;
}

// The text answer, or undefined (nothing typed) with the reason shown in `status`.
function typed(text, status) {
  status.className = "form-status";
  if (text.trim()) return text;
  status.textContent = "Write an answer first.";
  return undefined;
}

// The JSON in `text`, or undefined with the reason shown in `status`.
function parsed(text, status) {
  if (typed(text, status) === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    status.textContent = `Not sent: the answer is not valid JSON (${e.message}).`;
    return undefined;
  }
}

// How the server refused, with the path its schema check names (422) or the state (409).
function refusal(err) {
  if (!err.status) return String(err);
  const detail = Array.isArray(err.details) && err.details[0] && err.details[0].path ? ` (at ${err.details[0].path})` : "";
  const why = { 422: "The answer does not match the schema", 409: "This question is no longer waiting for an answer", 403: "Refused" }[err.status];
  return `${why ? `${why}: ` : ""}${err.text}${detail}`;
}

function example(schema) {
  if (schema.type === "object" && schema.properties) {
    return `{${Object.keys(schema.properties).map((k) => `"${k}": …`).join(", ")}}`;
  }
  return "JSON";
}
