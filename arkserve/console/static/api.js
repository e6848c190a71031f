// The REST client of the console: same API as the CLI, session cookie + X-CSRF-Token for unsafe methods.

import { session } from "./router.js";

const BASE = "/api/v1";
let csrf = "";
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "HTTPError";
    this.field = body.field || null;
    this.requestId = body.request_id || "";
    this.details = body;  // the whole body: its values (field, balance, limit...) fill the translated message
  }
}

export function setCsrf(token) { csrf = token || ""; }
export function csrfToken() { return csrf; }
export function onSessionExpired(fn) { onExpired = fn; }

async function errorOf(res) {
  let body = {};
  try { body = await res.json(); } catch { body = { message: res.statusText }; }
  const err = new ApiError(res.status, body);
  if (res.status === 401 && err.code === "SessionExpired") onExpired();
  return err;
}

let renewing = null;
/** After a 403 CSRFFailed: the session cookie was replaced (a login in another tab). True, with the new token
 * taken, when it is still this page's user; otherwise (another user, or no session) the page resets as for an
 * expired session. Concurrent failures share one GET /session. */
function renewCsrf() {
  renewing = renewing || (async () => {
    let s = null;
    try {
      const res = await fetch(BASE + "/session", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) s = await res.json();
    } catch { /* unreachable: treated as no session */ }
    if (s && session.username && s.username === session.username) {
      setCsrf(s.csrf_token);
      return true;
    }
    onExpired();
    return false;
  })().finally(() => { renewing = null; });
  return renewing;
}

/** fetch() under /api/v1; returns the Response (for streams) or throws ApiError. */
export async function raw(method, path, { body, signal, query } = {}, retried = false) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let url = BASE + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    if ([...q].length) url += "?" + q;
  }
  const res = await fetch(url, { method, headers, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 403 && err.code === "CSRFFailed" && !retried && await renewCsrf()) {
      return raw(method, path, { body, signal, query }, true);  // once, with the session's current token
    }
    throw err;
  }
  return res;
}

async function json(method, path, opts) {
  const res = await raw(method, path, opts);
  return res.status === 204 || res.status === 202 ? null : res.json();
}

export const api = {
  get: (path, query, signal) => json("GET", path, { query, signal }),
  post: (path, body) => json("POST", path, { body }),
  patch: (path, body) => json("PATCH", path, { body }),
  put: (path, body) => json("PUT", path, { body }),
  del: (path) => json("DELETE", path),
};

export const enc = encodeURIComponent;

let runtimeKind = null;
/** The platform's runtime ("local" or "docker"), asked once: what a service's port means depends on it. */
export async function platformRuntime() {
  if (runtimeKind === null) runtimeKind = (await api.get("/healthz")).runtime || "";
  return runtimeKind;
}
