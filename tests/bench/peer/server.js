'use strict';
// The server a user would write instead of paytrackr: Node's http, pg and
// ws, a pool of 8, one statement per request (a CTE between BEGIN and
// COMMIT for a create), the same tables and the same SQL shape. It checks
// bearer tokens by their SHA-256 and logs one JSON line per request, as
// paytrackr does when deployed. For side-by-side benchmarks only
// (tests/bench/http-bench.sh); it implements the routes the benchmark uses.
//
// env: PEER_PORT, PEER_DATABASE_URL, PEER_TOKENS ("ROLE:SHA256HEX,..."),
//      PEER_POOL (default 8)

const http = require('http');
const crypto = require('crypto');
const { Pool, Client } = require('pg');
const { WebSocketServer } = require('ws');

const TS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const COLUMNS = `id::text, amount, currency, payer, payee, reference, description, method, status,
  metadata, version, to_char(created_at AT TIME ZONE 'UTC', ${TS}) AS created_at,
  to_char(updated_at AT TIME ZONE 'UTC', ${TS}) AS updated_at`;
const CREATE_SQL = `
WITH t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS ts),
p AS (INSERT INTO payments (amount, currency, payer, payee, reference, description, method,
        status, metadata, created_at, updated_at)
      SELECT $1::bigint, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, t.ts, t.ts FROM t
      RETURNING ${COLUMNS}),
e AS (INSERT INTO payment_events (type, payment_id, at, payment)
      SELECT 'payment.created', p.id::uuid, p.updated_at::timestamptz, row_to_json(p) FROM p
      RETURNING seq)
SELECT p.*, pg_notify('paytrackr_events', e.seq::text),
       pg_advisory_xact_lock((e.seq >> 32)::int, ((e.seq << 32) >> 32)::int)
FROM p, e`;
const GET_SQL = `SELECT ${COLUMNS} FROM payments WHERE id = $1::uuid AND deleted_at IS NULL`;
const LIST_SQL = `SELECT ${COLUMNS}, to_char(created_at AT TIME ZONE 'UTC',
  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts FROM payments
  WHERE deleted_at IS NULL AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
  ORDER BY payments.created_at DESC, payments.id DESC LIMIT $1`;
// Qualified: a bare "id" would sort by the output column id::text, which
// the (created_at, id) index cannot give in order (a sort of every row).
const METHODS = new Set(['card', 'bank_transfer', 'cash', 'wallet', 'other']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const tokens = new Map();
for (const entry of (process.env.PEER_TOKENS || '').split(',')) {
  const [role, hash] = entry.split(':');
  if (role && hash) tokens.set(hash.toLowerCase(), role);
}
const pool = new Pool({
  connectionString: process.env.PEER_DATABASE_URL,
  max: Number(process.env.PEER_POOL || 8),
});

function authenticate(req) {
  const h = req.headers.authorization || '';
  if (!h.startsWith('Bearer ')) return null;
  const digest = crypto.createHash('sha256').update(h.slice(7)).digest('hex');
  for (const [hash, role] of tokens) {
    if (crypto.timingSafeEqual(Buffer.from(hash), Buffer.from(digest))) return role;
  }
  return null;
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(text);
  return status;
}

function error(res, status, code, message, field) {
  const err = { code, message };
  if (field) err.field = field;
  return send(res, status, { error: err });
}

function payment(row) {
  return {
    id: row.id, amount: Number(row.amount), currency: row.currency, payer: row.payer,
    payee: row.payee, reference: row.reference, description: row.description,
    method: row.method, status: row.status, metadata: row.metadata,
    version: Number(row.version), created_at: row.created_at, updated_at: row.updated_at,
  };
}

function validate(b) {
  if (!b || typeof b !== 'object' || Array.isArray(b)) return ['body', 'must be an object'];
  if (!Number.isInteger(b.amount) || b.amount < 1 || b.amount > 999999999999999) return ['amount', 'bad amount'];
  if (typeof b.currency !== 'string' || !/^[A-Z]{3}$/.test(b.currency)) return ['currency', 'bad currency'];
  for (const f of ['payer', 'payee']) {
    if (typeof b[f] !== 'string' || b[f].length < 1 || b[f].length > 200) return [f, 'bad ' + f];
  }
  if (b.method !== undefined && !METHODS.has(b.method)) return ['method', 'bad method'];
  if (b.reference !== undefined && b.reference !== null && typeof b.reference !== 'string') return ['reference', 'bad reference'];
  return null;
}

async function create(req, res, raw) {
  let b;
  try { b = JSON.parse(raw); } catch { return error(res, 400, 'malformed_json', 'bad JSON'); }
  const bad = validate(b);
  if (bad) return error(res, 422, 'validation_failed', bad[1], bad[0]);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const r = await client.query(CREATE_SQL, [b.amount, b.currency, b.payer, b.payee,
      b.reference ?? null, b.description ?? null, b.method || 'other', b.status || 'pending',
      JSON.stringify(b.metadata || {})]);
    await client.query('COMMIT');
    const p = payment(r.rows[0]);
    return send(res, 201, p, { Location: '/v1/payments/' + p.id, ETag: `"${p.version}"` });
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    return error(res, 503, 'unavailable', 'database error');
  } finally {
    client.release();
  }
}

async function get(res, id) {
  if (!UUID.test(id)) return error(res, 404, 'not_found', 'no payment with this id');
  const r = await pool.query(GET_SQL, [id]);
  if (r.rows.length === 0) return error(res, 404, 'not_found', 'no payment with this id');
  const p = payment(r.rows[0]);
  return send(res, 200, p, { ETag: `"${p.version}"` });
}

async function list(res, url) {
  const limit = Number(url.searchParams.get('limit') || 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) return error(res, 400, 'bad_request', 'bad limit');
  let ts = null, id = null;
  const cursor = url.searchParams.get('cursor');
  if (cursor) [ts, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const r = await pool.query(LIST_SQL, [limit + 1, ts, id]);
  const more = r.rows.length > limit;
  const rows = more ? r.rows.slice(0, limit) : r.rows;
  const last = rows[rows.length - 1];
  return send(res, 200, {
    data: rows.map(payment), has_more: more,
    next_cursor: more ? Buffer.from(last.cursor_ts + '|' + last.id).toString('base64url') : null,
  });
}

async function route(req, res, raw, url) {
  const role = authenticate(req);
  if (!role) return error(res, 401, 'unauthenticated', 'a valid bearer token is required');
  if (req.method === 'POST' && url.pathname === '/v1/payments') {
    if (role !== 'operator') return error(res, 403, 'forbidden', 'operators only');
    return create(req, res, raw);
  }
  if (req.method === 'GET' && url.pathname === '/v1/payments') return list(res, url);
  const m = /^\/v1\/payments\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'GET' && m) return get(res, m[1]);
  return error(res, 404, 'not_found', 'no such route');
}

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const url = new URL(req.url, 'http://peer');
    let status;
    try {
      status = await route(req, res, Buffer.concat(chunks).toString(), url);
    } catch (e) {
      status = error(res, 503, 'unavailable', 'database error');
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stderr.write(JSON.stringify({ level: 'info', msg: 'request', method: req.method,
      path: url.pathname, status, duration_ms: ms.toFixed(3) }) + '\n');
  });
});

// The stream: LISTEN on a connection of its own, read each announced
// event and push it to every socket.
const wss = new WebSocketServer({ server, path: '/v1/stream' });
async function listen() {
  const c = new Client({ connectionString: process.env.PEER_DATABASE_URL });
  await c.connect();
  c.on('notification', async (n) => {
    const r = await pool.query('SELECT seq, type, payment FROM payment_events WHERE seq = $1', [n.payload]);
    if (r.rows.length === 0) return;
    const ev = r.rows[0];
    const text = JSON.stringify({ type: 'event', event: ev.type, seq: Number(ev.seq), payment: ev.payment });
    for (const ws of wss.clients) ws.send(text);
  });
  await c.query('LISTEN paytrackr_events');
}

listen().then(() => {
  server.listen(Number(process.env.PEER_PORT), '127.0.0.1', () => {
    process.stdout.write('ready\n');
  });
}).catch((e) => {
  process.stderr.write('peer: ' + e.message + '\n');
  process.exit(1);
});
