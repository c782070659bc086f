// HTTP calls to raftex nodes. Every node serves the same API and allows
// the other members' origins (CORS), so the page can talk to any of them.
// With auth enabled every call carries the login's token, and the event
// streams the cookie the login set (an EventSource sends no headers).

export const TIMEOUT_MS = 1500;

// baseURL turns a member's client address ("127.0.0.1:8001") into an origin.
// A wildcard host (":8001", "0.0.0.0:8001", "[::]:8001") means "this
// machine", so the page's own host name is used with that port.
export function baseURL(addr) {
  if (!addr) return null;
  if (/^https?:\/\//.test(addr)) return addr.replace(/\/+$/, "");
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) return `${location.protocol}//${addr}`;
  let host = m[1];
  if (host === "" || host === "0.0.0.0" || host === "[::]" || host === "::") host = location.hostname;
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return `${location.protocol}//${host}:${m[2]}`;
}

// token is the login's bearer token ("" before a login, or without auth).
let token = "";

export function setToken(t) { token = t || ""; }

function headers() { return token ? { Authorization: `Bearer ${token}` } : {}; }

// AuthError is a 401 (log in) or 403 (the user may not) answer.
export class AuthError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// errorText reads a {"error": "..."} body, or falls back to the status line.
async function errorText(resp) {
  try {
    const body = await resp.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `HTTP ${resp.status} ${resp.statusText}`.trim();
}

// failure says in a few words why a request failed: fetch rejects with a
// TypeError when the node cannot be reached at all.
export function failure(e) {
  if (e.name === "TimeoutError") return "timed out";
  if (e instanceof TypeError) return "unreachable";
  return e.message || String(e);
}

// getJSON fetches url and decodes JSON; it throws on network errors,
// timeouts and non-2xx answers (with the server's error message).
export async function getJSON(url, timeout = TIMEOUT_MS) {
  const resp = await fetch(url, { signal: AbortSignal.timeout(timeout), cache: "no-store", headers: headers() });
  if (!resp.ok) throw await failed(resp);
  return resp.json();
}

// failed turns an error answer into the error to throw.
async function failed(resp) {
  const text = await errorText(resp);
  if (resp.status === 401 || resp.status === 403) return new AuthError(resp.status, text);
  return new Error(text);
}

// login asks the node at base for a token; with credentials "include" the
// node also sets its cookie for the event stream. It resolves to the
// token.
export async function login(base, name, password) {
  const resp = await fetch(`${base}/v1/auth/token`, {
    method: "POST", credentials: "include", cache: "no-store", signal: AbortSignal.timeout(5000),
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, password }),
  });
  if (!resp.ok) throw await failed(resp);
  return (await resp.json()).token;
}

// NetworkError marks a failure to reach a node at all (worth trying
// another), as opposed to an answer the node gave.
export class NetworkError extends Error {}

async function send(url, init) {
  try {
    return await fetch(url, { ...init, headers: headers(), signal: AbortSignal.timeout(5000), cache: "no-store" });
  } catch (e) {
    throw new NetworkError(failure(e));
  }
}

function kvURL(base, key) {
  return `${base}/v1/kv/${encodeURIComponent(key)}`;
}

// putKey writes value under key through the node at base; it resolves to
// the new revision.
export async function putKey(base, key, value) {
  const resp = await send(kvURL(base, key), { method: "PUT", body: value });
  if (!resp.ok) throw await failed(resp);
  const body = await resp.json();
  return body.revision;
}

// getKey reads key through the node at base; it resolves to
// {found, value, revision}.
export async function getKey(base, key) {
  const resp = await send(kvURL(base, key), { method: "GET" });
  if (resp.status === 404) return { found: false };
  if (!resp.ok) throw await failed(resp);
  return { found: true, value: await resp.text(), revision: resp.headers.get("Raftex-Revision") };
}
