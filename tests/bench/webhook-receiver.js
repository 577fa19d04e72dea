// Webhook receiver for tests/bench/webhook-bench.sh: answers 204 to every
// POST, and for each path (one per endpoint) checks that seqs only grow
// (a repeat or a step back counts as a reorder or duplicate), and records
// the commit-to-receipt latency (receipt time minus the event's "at").
// GET /stats answers the summary, GET /count the deliveries so far;
// POST /reset clears it.
'use strict';
const http = require('http');

let lat = [];
let last = new Map();
let count = 0, dups = 0, reordered = 0, first = 0, lastAt = 0;

function reset() {
  lat = []; last = new Map(); count = 0; dups = 0; reordered = 0; first = 0; lastAt = 0;
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, {'Content-Type': 'text/plain'});
    res.end(String(count));
    return;
  }
  if (req.method === 'GET' && req.url === '/stats') {
    const sorted = Float64Array.from(lat).sort();
    res.writeHead(200, {'Content-Type': 'application/json'});
    res.end(JSON.stringify({
      count, dups, reordered, endpoints: last.size,
      p50_ms: pct(sorted, 0.5), p99_ms: pct(sorted, 0.99), max_ms: pct(sorted, 1),
      window_s: (lastAt - first) / 1000,
    }));
    return;
  }
  if (req.method === 'POST' && req.url === '/reset') {
    reset();
    res.writeHead(204); res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    try {
      const ev = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const prev = last.get(req.url);
      if (prev !== undefined && ev.seq === prev) dups++;
      else if (prev !== undefined && ev.seq < prev) reordered++;
      last.set(req.url, ev.seq);
      lat.push(now - Date.parse(ev.at));
      count++;
      if (!first) first = now;
      lastAt = now;
    } catch (e) {
      reordered++;
    }
    res.writeHead(204); res.end();
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.RECEIVER_PORT), '127.0.0.1');
