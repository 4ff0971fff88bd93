// Inline SVG charts drawn from the overview's numbers (no library). Colours come from CSS
// classes, so light and dark schemes both apply.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function title(text) {
  const t = document.createElementNS(NS, "title");
  t.textContent = text;
  return t;
}

// Completed and failed per minute over the last hour, stacked bars, oldest on the left.
export function throughputChart(perMinute, now, label) {
  const W = 300, H = 70, slots = 60;
  const end = Math.floor(now / 60) * 60;
  const byMinute = new Map(perMinute.map((p) => [p.t, p]));
  let max = 1;
  for (const p of perMinute) max = Math.max(max, p.completed + p.failed);
  const bw = W / slots;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H + 12}`, class: "chart", role: "img", "aria-label": label });
  svg.append(title(label));
  svg.append(s("line", { x1: 0, y1: H, x2: W, y2: H, class: "axis" }));
  for (let i = 0; i < slots; i++) {
    const t = end - (slots - 1 - i) * 60;
    const p = byMinute.get(t);
    if (!p) continue;
    const hc = (p.completed / max) * (H - 2);
    const hf = (p.failed / max) * (H - 2);
    const x = i * bw + 0.5;
    const tip = `${new Date(t * 1000).toLocaleTimeString()}: ${p.completed} completed, ${p.failed} failed`;
    if (hc > 0) svg.append(s("rect", { x, y: H - hc, width: bw - 1, height: hc, class: "ok" }, title(tip)));
    if (hf > 0) svg.append(s("rect", { x, y: H - hc - hf, width: bw - 1, height: hf, class: "bad" }, title(tip)));
  }
  const text = (x, anchor, t) => {
    const el = s("text", { x, y: H + 10, "text-anchor": anchor, class: "tick" });
    el.textContent = t;
    return el;
  };
  svg.append(text(0, "start", "−60 min"), text(W, "end", "now"), text(W / 2, "middle", `max ${max}/min`));
  return svg;
}

// One horizontal bar per agent: failure rate (0–100 %) over the last hour.
export function failureChart(agents) {
  return barChart(
    agents.map((a) => ({ name: a.agent, values: [a.failure_rate === null ? 0 : a.failure_rate * 100] })),
    100,
    (v) => `${v[0].toFixed(1)} %`,
    ["bad"],
    "Failure rate per agent, last hour",
  );
}

// p50 and p95 duration per agent, two bars each.
export function latencyChart(agents) {
  const max = Math.max(0.001, ...agents.map((a) => a.p95_seconds || 0));
  return barChart(
    agents.map((a) => ({ name: a.agent, values: [a.p50_seconds || 0, a.p95_seconds || 0] })),
    max,
    (v) => `p50 ${v[0].toFixed(2)} s · p95 ${v[1].toFixed(2)} s`,
    ["p50", "p95"],
    "p50 and p95 duration per agent, last hour",
  );
}

function barChart(items, max, labelOf, classes, label) {
  const W = 300, rowH = 8 * classes.length + 18, nameW = 80;
  const H = Math.max(rowH, items.length * rowH);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
  svg.append(title(label));
  items.forEach((it, i) => {
    const y = i * rowH;
    const name = s("text", { x: 0, y: y + 12, class: "tick" });
    name.textContent = it.name.length > 12 ? `${it.name.slice(0, 11)}…` : it.name;
    svg.append(name);
    it.values.forEach((v, j) => {
      const w = Math.max(0, (v / max) * (W - nameW - 4));
      svg.append(s("rect", { x: nameW, y: y + 3 + j * 8, width: Math.max(w, 1), height: 6, class: classes[j] }));
    });
    const value = s("text", { x: nameW, y: y + 3 + classes.length * 8 + 8, class: "tick" });
    value.textContent = labelOf(it.values);
    svg.append(value);
  });
  return svg;
}
