// The REST API (/api/v1), with the API key of this browser tab.
const PREFIX = '/api/v1';
const KEY = 'launch.apiKey';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }
}

export function apiKey() { return sessionStorage.getItem(KEY); }
export function setApiKey(key) { sessionStorage.setItem(KEY, key); }
export function clearApiKey() { sessionStorage.removeItem(KEY); }

// Called with the error of any 401, so the app can ask for a key again.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function send(path, { method = 'GET', body, quiet = false } = {}) {
  const headers = { Accept: 'application/json' };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(PREFIX + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'io', `the server did not answer (${e.message})`, null);
  }
  if (!res.ok) {
    let code = 'http', message = `${method} ${path}: HTTP ${res.status}`, field = null;
    try {
      const doc = await res.json();
      if (doc && doc.error) {
        code = doc.error.code ?? code;
        message = doc.error.message ?? message;
        field = doc.error.field ?? null;
      }
    } catch { /* a body that is not JSON: the status says it */ }
    const err = new ApiError(res.status, code, message, field);
    if (res.status === 401 && !quiet) onUnauthorized(err);
    throw err;
  }
  return res;
}

// `quiet`: a 401 is the caller's to handle (signing in), not a sign-out.
export async function get(path, { quiet = false } = {}) {
  const res = await send(path, { quiet });
  return res.status === 204 ? null : res.json();
}

export async function post(path, body) {
  const res = await send(path, { method: 'POST', body });
  return res.status === 204 ? null : res.json();
}

// A piece of a job's log from `offset`: its text, the next offset and
// whether the log is complete.
export async function logChunk(id, stream, offset) {
  const res = await send(`/items/${encodeURIComponent(id)}/logs?stream=${encodeURIComponent(stream)}&offset=${offset}`);
  const buf = await res.arrayBuffer();
  const next = Number(res.headers.get('X-Log-Offset'));
  return {
    bytes: new Uint8Array(buf),
    next: Number.isFinite(next) && res.headers.has('X-Log-Offset') ? next : offset + buf.byteLength,
    complete: res.headers.get('X-Log-Complete') === 'true',
  };
}

export const q = (ref) => ref.split('/').map(encodeURIComponent).join('/');
