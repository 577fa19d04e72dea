// The HTTP API client: the token lives in sessionStorage only and goes in
// the Authorization header, never in a page URL.
const TOKEN_KEY = 'paytrackr.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A fresh Idempotency-Key for one write (crypto.randomUUID needs a secure
// context; getRandomValues does not).
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return 'web-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

function headersFor(opts) {
  const h = { Accept: 'application/json' };
  const t = getToken();
  if (t) h.Authorization = 'Bearer ' + t;
  if (opts.body !== undefined) h['Content-Type'] = 'application/json';
  if (opts.ifMatch !== undefined) h['If-Match'] = `"${opts.ifMatch}"`;
  if (opts.idempotent) h['Idempotency-Key'] = newKey();
  return h;
}

async function send(method, path, opts) {
  try {
    return await fetch(path, {
      method,
      headers: headersFor(opts),
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
}

async function failure(res) {
  let err = null;
  try {
    err = (await res.json()).error;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, err?.code || 'http_' + res.status, err?.message || res.statusText, err?.field);
}

// Sends one request; resolves to the parsed JSON (null for 204), rejects
// with an ApiError.
export async function request(method, path, opts = {}) {
  const res = await send(method, path, opts);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

// GET of a file (the CSV export): resolves to {blob, filename}.
export async function download(path, fallbackName) {
  const res = await send('GET', path, {});
  if (!res.ok) throw await failure(res);
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return { blob: await res.blob(), filename: m ? m[1] : fallbackName };
}

export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
