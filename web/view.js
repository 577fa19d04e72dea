// DOM building and formatting helpers: no state lives here.
import { formatMinor } from './money.js';

// el('td', {class: 'num'}, 'text', childNode...). Text is always set as
// text, never as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const STATUSES = ['pending', 'settled', 'failed', 'cancelled', 'refunded'];

// The transitions the contract allows from each status.
export const TRANSITIONS = {
  pending: ['settled', 'failed', 'cancelled'],
  settled: ['refunded'],
  failed: [],
  cancelled: [],
  refunded: [],
};

export function statusBadge(status) {
  return el('span', { class: `badge s-${STATUSES.includes(status) ? status : 'other'}` }, status);
}

const pad = (n) => String(n).padStart(2, '0');

// "2026-11-24 12:00" in the viewer's time zone (the full time is in the
// title and the detail view).
export function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function secondsTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || '';
  return `${shortTime(iso)}:${pad(d.getSeconds())}`;
}

// Local time to the second, with the exact UTC timestamp beneath.
export function longTime(iso) {
  return [secondsTime(iso), el('span', { class: 'iso muted' }, iso)];
}

export function methodLabel(m) {
  return m === 'bank_transfer' ? 'bank transfer' : m || '';
}

export function amountCell(p) {
  return el('span', { class: 'amount' }, formatMinor(p.amount, p.currency), el('span', { class: 'ccy' }, p.currency));
}

export function paymentRow(p) {
  const tr = el(
    'tr',
    { tabindex: '-1', dataset: { id: p.id }, 'aria-label': `${p.payer} to ${p.payee}, ${formatMinor(p.amount, p.currency)} ${p.currency}, ${p.status}` },
    el('td', { class: 'c-created', title: p.created_at }, shortTime(p.created_at)),
    el('td', { class: 'c-payer' }, p.payer),
    el('td', { class: 'c-payee' }, p.payee),
    el('td', { class: 'c-ref' }, p.reference ?? ''),
    el('td', { class: 'c-method' }, methodLabel(p.method)),
    el('td', { class: 'c-status' }, statusBadge(p.status)),
    el('td', { class: 'c-amount num' }, amountCell(p)),
  );
  return tr;
}

export function actorText(actor) {
  if (!actor) return '—';
  return `${actor.name} (${actor.role})`;
}
