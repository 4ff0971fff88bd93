// The console's one door to the server: the same /v1 API and authorization the SDK uses.
// The session cookie (HttpOnly, set by POST /ui/session) authenticates every call; every
// change also carries the session's CSRF token in the X-CSRF-Token header.

let session = null;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get text() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

export const currentSession = () => session;
export const isAdmin = () => session !== null && session.role === "admin";

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (response.ok) return body;
  const err = (body && body.error) || {};
  throw new ApiError(response.status, err.code || "HTTP_ERROR", err.message || String(body), err.details);
}

export async function loadSession() {
  const r = await fetch("/ui/session", { headers: { Accept: "application/json" } });
  session = r.ok ? await r.json() : null;
  return session;
}

export async function signIn(key) {
  const r = await fetch("/ui/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ key }),
  });
  session = await parse(r);
  return session;
}

export async function signOut() {
  try {
    await call("DELETE", "/ui/session");
  } finally {
    session = null;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// One API call. GET params go in the query string; a body is sent as JSON.
export async function call(method, path, { params, body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = session ? session.csrf_token : "";
  }
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path + query(params), init);
  if (r.status === 401 && session !== null && path !== "/ui/session" && (await loadSession()) === null) {
    window.dispatchEvent(new CustomEvent("errand:signed-out")); // the session expired or was revoked
  }
  return parse(r);
}

export const get = (path, params) => call("GET", path, { params });
export const post = (path, body) => call("POST", path, { body: body === undefined ? {} : body });
export const del = (path) => call("DELETE", path);
export const patch = (path, body) => call("PATCH", path, { body });

// A GET whose route may not exist on this server (yet): null for a 404 of the router.
export async function optional(path, params) {
  try {
    return await get(path, params);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return null;
    throw e;
  }
}
