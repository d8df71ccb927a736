// convoy's /v1/ API from the console: the token lives in this tab's sessionStorage alone (never a
// URL, never localStorage), and goes out as a bearer token; behind an OIDC proxy there is none and
// the proxy's identity header stands for it. The server checks every call; what the
// console hides is a convenience, never the guard.
const KEY = 'convoy.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function clearToken() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body, headers = {}) {
  // No token: no Authorization at all (an OIDC proxy in front may have signed the person in).
  const init = { method, headers: { ...(token() ? { Authorization: `Bearer ${token()}` } : {}), ...headers }, cache: 'no-store' };
  if (body instanceof Blob) {
    // A file goes as its own bytes with its own type (a photo for POST /v1/media).
    init.headers['Content-Type'] = body.type || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!r.ok) {
    const e = json && json.error ? json.error : {};
    throw new ApiError(r.status, e.code || String(r.status), e.message || text || r.statusText);
  }
  return json;
}

// A query string from the members that are set.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
