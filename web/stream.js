// The live stream (GET /v1/stream, subprotocol paytrackr.v1), applied as
// the TUI applies it: resume with `after` = the last seq seen, so a
// reconnect receives every later event exactly once, in order.
import { getToken } from './api.js';

const RETRY_MIN_MS = 400;
const RETRY_MAX_MS = 4000;

export class Stream {
  // handlers: onState('CONNECTING'|'LIVE'|'OFFLINE'), onEvent(msg),
  // onLive(resumed) after each subscribe.
  constructor(handlers) {
    this.h = handlers;
    this.after = null; // last seq applied (null before the first subscribe)
    this.ws = null;
    this.timer = null;
    this.delay = RETRY_MIN_MS;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.h.onState('CONNECTING');
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const t = getToken();
    return `${proto}//${location.host}/v1/stream` + (t ? '?access_token=' + encodeURIComponent(t) : '');
  }

  connect() {
    let ws;
    try {
      ws = new WebSocket(this.url(), 'paytrackr.v1');
    } catch {
      this.lost();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'subscribe', after: this.after, filter: null }));
    };
    ws.onmessage = (m) => {
      if (this.ws === ws) this.message(m.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.lost();
    };
  }

  lost() {
    if (this.stopped) return;
    this.h.onState('OFFLINE');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  message(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'subscribed') {
      const resumed = this.after !== null;
      // Only new events were asked for: everything after `head` is next.
      if (this.after === null) this.after = msg.head;
      this.delay = RETRY_MIN_MS;
      this.h.onState('LIVE');
      this.h.onLive(resumed);
    } else if (msg.type === 'event') {
      if (this.after !== null && msg.seq <= this.after) return; // seen already
      this.after = msg.seq;
      this.h.onEvent(msg);
    }
  }
}
