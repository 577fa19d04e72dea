// paytrackr web dashboard: the page's state and wiring. It talks to the
// same HTTP API and WebSocket stream as every other client.
import { ApiError, clearToken, download, getToken, queryString, request, setToken } from './api.js';
import { currencyCodes, currencyName, exponentOf, formatMinor, parseMajor, plainMinor } from './money.js';
import { Stream } from './stream.js';
import { TRANSITIONS, actorText, el, longTime, methodLabel, paymentRow, secondsTime, statusBadge } from './view.js';

const PAGE_SIZE = 50;
// Filters kept in the page URL, under the names GET /v1/payments takes.
const FILTER_KEYS = ['q', 'status', 'currency', 'method', 'payer', 'payee', 'min_amount', 'max_amount', 'created_gte', 'created_lt'];
const MAX_LIVE_ROWS = 500; // first-page rows added live before asking for a reload

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  filters: {},
  order: 'created_at.desc',
  cursors: [null], // cursor of each page visited; the last is the current page
  rows: [], // payments shown, in display order
  hasMore: false,
  nextCursor: null,
  loading: false,
  pending: [], // stream events that arrived while a page was loading
  sel: -1,
  fresh: 0,
  detail: null, // the payment open in the detail view
  statsTimer: null,
  stream: null,
};

const canWrite = () => state.me?.role === 'operator';

// ---------------------------------------------------------------- messages

let toastTimer = null;
function toast(text, kind = 'info') {
  const t = $('toast');
  t.textContent = text;
  t.className = `toast toast-${kind}`;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 4000);
}

function errorText(err) {
  if (err instanceof ApiError) return err.message || err.code;
  return String(err?.message || err);
}

// Shows an error next to the field it names (an element with
// data-field=NAME inside `form`), or at the form's foot.
function showFormError(form, err) {
  clearFormErrors(form);
  const field = err instanceof ApiError ? err.field : null;
  const box = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (box) {
    box.querySelector('.field-error').textContent = errorText(err);
    const input = box.querySelector('input, select, textarea');
    input?.setAttribute('aria-invalid', 'true');
    input?.focus();
  } else {
    form.querySelector('.form-error').textContent = errorText(err);
  }
}

function setFieldError(form, field, text) {
  const box = form.querySelector(`[data-field="${field}"]`);
  box.querySelector('.field-error').textContent = text;
  box.querySelector('input, select, textarea').setAttribute('aria-invalid', 'true');
}

function clearFormErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}

// ---------------------------------------------------------------- URL and filters

function readUrl() {
  const q = new URLSearchParams(location.search);
  state.filters = {};
  for (const k of FILTER_KEYS) {
    const v = q.get(k);
    if (v) state.filters[k] = v;
  }
  state.order = q.get('order') === 'created_at.asc' ? 'created_at.asc' : 'created_at.desc';
}

function writeUrl(push) {
  const params = { ...state.filters };
  if (state.order !== 'created_at.desc') params.order = state.order;
  const url = location.pathname + queryString(params);
  if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

function dateOf(rfc3339) {
  return /^\d{4}-\d\d-\d\d/.test(rfc3339 || '') ? rfc3339.slice(0, 10) : '';
}

// Amount bounds are typed in major units of the chosen currency; without
// one they are minor units (the API's own unit).
function boundToText(v, currency) {
  if (!v) return '';
  return currency && exponentOf(currency) !== null ? plainMinor(Number(v), currency) : v;
}

function boundFromText(text, currency, label) {
  const s = text.trim();
  if (!s) return { value: undefined };
  if (currency) {
    const r = parseMajor(s, currency, { allowZero: true });
    return r.error ? { error: `${label}: ${r.error}` } : { value: String(r.minor) };
  }
  return /^\d{1,15}$/.test(s) ? { value: String(Number(s)) } : { error: `${label}: whole minor units (choose a currency to type 12.50)` };
}

function fillFilterForm() {
  const f = state.filters;
  $('f-q').value = f.q || '';
  $('f-status').value = f.status || '';
  $('f-currency').value = f.currency || '';
  $('f-method').value = f.method || '';
  $('f-min').value = boundToText(f.min_amount, f.currency);
  $('f-max').value = boundToText(f.max_amount, f.currency);
  $('f-from').value = dateOf(f.created_gte);
  $('f-to').value = dateOf(f.created_lt);
  updateUnits();
  const extra = Object.keys(f).filter((k) => k !== 'q').length;
  $('f-more').textContent = extra ? `Filters (${extra})` : 'Filters';
  $('order').textContent = state.order === 'created_at.asc' ? 'Oldest first' : 'Newest first';
}

function updateUnits() {
  const c = $('f-currency').value;
  for (const u of document.querySelectorAll('[data-unit]')) u.textContent = c ? `(${c})` : '(minor units)';
}

function readFilterForm() {
  const f = {};
  const currency = $('f-currency').value;
  const text = (id) => $(id).value.trim();
  if (text('f-q')) f.q = text('f-q');
  if ($('f-status').value) f.status = $('f-status').value;
  if (currency) f.currency = currency;
  if ($('f-method').value) f.method = $('f-method').value;
  // payer/payee have no field here: kept from a shared link.
  if (state.filters.payer) f.payer = state.filters.payer;
  if (state.filters.payee) f.payee = state.filters.payee;
  const min = boundFromText($('f-min').value, currency, 'Min amount');
  const max = boundFromText($('f-max').value, currency, 'Max amount');
  const err = min.error || max.error;
  if (err) return { error: err };
  if (min.value !== undefined) f.min_amount = min.value;
  if (max.value !== undefined) f.max_amount = max.value;
  if ($('f-from').value) f.created_gte = `${$('f-from').value}T00:00:00Z`;
  if ($('f-to').value) f.created_lt = `${$('f-to').value}T00:00:00Z`;
  return { filters: f };
}

// Whether a payment belongs to the current filter (as the server decides
// for GET /v1/payments), for events that arrive live.
function matches(p) {
  const f = state.filters;
  if (f.status && p.status !== f.status) return false;
  if (f.currency && p.currency !== f.currency) return false;
  if (f.method && p.method !== f.method) return false;
  if (f.payer && p.payer !== f.payer) return false;
  if (f.payee && p.payee !== f.payee) return false;
  if (f.min_amount && p.amount < Number(f.min_amount)) return false;
  if (f.max_amount && p.amount > Number(f.max_amount)) return false;
  if (f.created_gte && Date.parse(p.created_at) < Date.parse(f.created_gte)) return false;
  if (f.created_lt && Date.parse(p.created_at) >= Date.parse(f.created_lt)) return false;
  if (f.q) {
    const needle = f.q.toLowerCase();
    const hay = [p.payer, p.payee, p.reference || ''].map((s) => s.toLowerCase());
    if (!hay.some((s) => s.includes(needle))) return false;
  }
  return true;
}

// ---------------------------------------------------------------- table

function renderRows() {
  const body = $('rows');
  body.replaceChildren(...state.rows.map(paymentRow));
  $('empty').hidden = state.rows.length > 0 || state.loading;
  if (state.sel >= state.rows.length) state.sel = state.rows.length - 1;
  markSelected(false);
  renderPager();
}

function rowNode(id) {
  return $('rows').querySelector(`tr[data-id="${CSS.escape(id)}"]`);
}

function flash(node) {
  node.classList.remove('flash');
  void node.offsetWidth; // restart the animation
  node.classList.add('flash');
}

function markSelected(focus) {
  const rows = $('rows').children;
  for (let i = 0; i < rows.length; i++) {
    const on = i === state.sel;
    rows[i].classList.toggle('selected', on);
    rows[i].tabIndex = on || (state.sel < 0 && i === 0) ? 0 : -1;
    if (on) rows[i].setAttribute('aria-current', 'true');
    else rows[i].removeAttribute('aria-current');
  }
  if (focus && rows[state.sel]) {
    rows[state.sel].focus();
    rows[state.sel].scrollIntoView({ block: 'nearest' });
  }
}

function move(delta) {
  if (!state.rows.length) return;
  state.sel = Math.max(0, Math.min(state.rows.length - 1, (state.sel < 0 ? -1 : state.sel) + delta));
  markSelected(true);
}

function renderPager() {
  const page = state.cursors.length;
  const start = (page - 1) * PAGE_SIZE;
  const shown = state.rows.length;
  const total = state.total;
  let info = shown ? `${(start + 1).toLocaleString('en-US')}–${(start + shown).toLocaleString('en-US')}` : '0';
  if (total !== undefined) info += ` of ${total.toLocaleString('en-US')}`;
  $('page-info').textContent = `Page ${page} · ${info}`;
  $('prev').disabled = page <= 1;
  $('first').disabled = page <= 1;
  $('next').disabled = !state.hasMore;
}

function renderFresh() {
  const p = $('fresh');
  p.hidden = state.fresh === 0;
  $('fresh-button').textContent = `${state.fresh} new ${state.fresh === 1 ? 'payment' : 'payments'} — show the newest`;
}

async function loadPage() {
  state.loading = true;
  const cursor = state.cursors[state.cursors.length - 1];
  const params = { ...state.filters, order: state.order, limit: PAGE_SIZE, cursor };
  $('table').setAttribute('aria-busy', 'true');
  try {
    const page = await request('GET', '/v1/payments' + queryString(params));
    state.rows = page.data;
    state.hasMore = page.has_more;
    state.nextCursor = page.next_cursor;
    state.fresh = 0;
    state.stale = false;
    $('filter-error').textContent = '';
  } catch (err) {
    state.stale = true;
    if (err.status === 401) return signOut('Your token is no longer accepted.');
    state.rows = [];
    state.hasMore = false;
    $('filter-error').textContent = errorText(err);
  } finally {
    state.loading = false;
    $('table').removeAttribute('aria-busy');
  }
  renderRows();
  renderFresh();
  const queued = state.pending;
  state.pending = [];
  for (const msg of queued) applyEvent(msg);
}

function reload({ push = false } = {}) {
  state.cursors = [null];
  state.sel = -1;
  writeUrl(push);
  loadPage();
  loadStats();
}

// ---------------------------------------------------------------- totals

async function loadStats() {
  const params = { ...state.filters };
  try {
    const stats = await request('GET', '/v1/stats' + queryString(params));
    renderTotals(stats);
  } catch (err) {
    $('totals').replaceChildren(el('span', { class: 'muted' }, `Totals unavailable: ${errorText(err)}`));
  }
}

function scheduleStats() {
  clearTimeout(state.statsTimer);
  state.statsTimer = setTimeout(loadStats, 250);
}

function renderTotals(stats) {
  const per = new Map();
  let count = 0;
  for (const r of stats.data || []) {
    const t = per.get(r.currency) || { count: 0, amount: 0, refunded: 0 };
    t.count += r.count;
    t.amount += r.amount;
    t.refunded += r.amount_refunded || 0;
    per.set(r.currency, t);
    count += r.count;
  }
  if (typeof stats.count === 'number') count = stats.count;
  state.total = count;
  const chips = [...per.entries()]
    .sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]))
    .map(([ccy, t]) =>
      el(
        'span',
        { class: 'chip', title: `${currencyName(ccy)}: ${t.count} payments` },
        el('span', { class: 'chip-ccy' }, ccy),
        el('span', { class: 'chip-amt' }, formatMinor(t.amount, ccy)),
        t.refunded ? el('span', { class: 'chip-ref' }, `−${formatMinor(t.refunded, ccy)} refunded`) : null,
      ),
    );
  $('totals').replaceChildren(
    el('span', { class: 'count' }, el('strong', {}, count.toLocaleString('en-US')), count === 1 ? ' payment' : ' payments'),
    ...chips,
  );
  renderPager();
}

// ---------------------------------------------------------------- live events

function applyEvent(msg) {
  if (state.loading) {
    state.pending.push(msg);
    return;
  }
  const p = msg.payment;
  if (!p || !p.id) return;
  scheduleStats();
  const i = state.rows.findIndex((r) => r.id === p.id);
  if (msg.event === 'payment.deleted') {
    if (i >= 0) removeRow(i);
  } else if (i >= 0) {
    if (p.version <= state.rows[i].version) return; // applied already
    if (matches(p)) replaceRow(i, p);
    else removeRow(i);
  } else if (matches(p)) {
    addRow(p, msg.event === 'payment.created');
  }
  if (state.detail?.id === p.id) refreshDetail(msg.event === 'payment.deleted' ? null : p);
}

// True when `a` is listed before `b` in the current order: by created_at,
// then id, as the server pages (ISO timestamps compare as strings).
function listedBefore(a, b) {
  let c = a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0;
  if (c === 0) c = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return state.order === 'created_at.asc' ? c < 0 : c > 0;
}

// A payment that now matches the filter goes where the server would list
// it, when that place is on this page; one created after the first page
// is counted in the "new payments" notice instead.
function addRow(p, created) {
  const rows = state.rows;
  let at = rows.findIndex((r) => listedBefore(p, r));
  if (at < 0) at = rows.length;
  const firstPage = state.cursors.length === 1;
  const fits = (at > 0 || firstPage) && (at < rows.length || !state.hasMore);
  if (!fits || rows.length >= PAGE_SIZE + MAX_LIVE_ROWS) {
    if (created && state.order === 'created_at.desc' && at === 0) {
      state.fresh++;
      renderFresh();
    }
    return;
  }
  rows.splice(at, 0, p);
  if (state.sel >= at) state.sel++;
  const tr = paymentRow(p);
  $('rows').insertBefore(tr, $('rows').children[at] || null);
  $('empty').hidden = true;
  markSelected(false);
  flash(tr);
}

function replaceRow(i, p) {
  state.rows[i] = p;
  const old = rowNode(p.id);
  const tr = paymentRow(p);
  old?.replaceWith(tr);
  markSelected(document.activeElement === old);
  flash(tr);
}

function removeRow(i) {
  const [p] = state.rows.splice(i, 1);
  const wasFocused = document.activeElement === rowNode(p.id);
  rowNode(p.id)?.remove();
  if (state.sel > i || state.sel >= state.rows.length) state.sel--;
  $('empty').hidden = state.rows.length > 0;
  markSelected(wasFocused);
}

// Applies a payment a write of ours returned, exactly as an event would
// (by version), so the page does not wait for the stream.
function applyOwn(p, event) {
  applyEvent({ event, payment: p });
}

function setConn(word) {
  const c = $('conn');
  c.textContent = word;
  c.className = `conn conn-${word.toLowerCase()}`;
}

// ---------------------------------------------------------------- detail

function field(label, value, cls) {
  return [el('dt', {}, label), el('dd', { class: cls }, value ?? el('span', { class: 'muted' }, '—'))];
}

async function openDetail(id) {
  let p;
  try {
    p = await request('GET', `/v1/payments/${encodeURIComponent(id)}`);
  } catch (err) {
    toast(errorText(err), 'error');
    return;
  }
  state.detail = p;
  $('detail').hidden = false;
  document.body.classList.add('with-detail');
  renderDetail(p, null, null);
  $('detail').focus();
  loadTrail(p.id);
}

async function loadTrail(id) {
  const [events, refunds] = await Promise.allSettled([
    request('GET', `/v1/payments/${encodeURIComponent(id)}/events`),
    request('GET', `/v1/payments/${encodeURIComponent(id)}/refunds`),
  ]);
  if (state.detail?.id !== id) return;
  renderDetail(
    state.detail,
    events.status === 'fulfilled' ? events.value.data : [],
    refunds.status === 'fulfilled' ? refunds.value.data : [],
  );
}

let trailTimer = null;
function refreshDetail(p) {
  if (!p) {
    toast('This payment was deleted.');
    closeDetail();
    return;
  }
  if (p.version < state.detail.version) return;
  state.detail = p;
  clearTimeout(trailTimer);
  trailTimer = setTimeout(() => loadTrail(p.id), 150);
}

function closeDetail() {
  if ($('detail').hidden) return;
  $('detail').hidden = true;
  document.body.classList.remove('with-detail');
  const id = state.detail?.id;
  state.detail = null;
  const row = id && rowNode(id);
  if (row) row.focus();
  else markSelected(true);
}

// A titled list of the detail view: null while loading.
function listSection(title, items, tag, cls, render) {
  let body;
  if (items === null) body = el('p', { class: 'muted' }, 'Loading…');
  else if (!items.length) body = el('p', { class: 'muted' }, 'None.');
  else body = el(tag, { class: `list ${cls}` }, items.map((it) => el('li', {}, render(it))));
  return [el('h3', {}, title), body];
}

function renderDetail(p, events, refunds) {
  const left = p.amount - (p.amount_refunded || 0);
  $('detail-title').textContent = `${p.payer} → ${p.payee}`;
  const body = $('detail-body');
  const meta = Object.entries(p.metadata || {});
  const parts = [
    el('div', { class: 'detail-amount' }, el('span', { class: 'big' }, formatMinor(p.amount, p.currency)), el('span', { class: 'ccy' }, p.currency), statusBadge(p.status)),
    el(
      'dl',
      { class: 'fields' },
      field('ID', p.id, 'mono'),
      field('Payer', p.payer),
      field('Payee', p.payee),
      field('Amount', `${formatMinor(p.amount, p.currency)} ${p.currency}`, 'num-left'),
      field('Refunded', `${formatMinor(p.amount_refunded || 0, p.currency)} ${p.currency}`),
      field('Method', methodLabel(p.method)),
      field('Reference', p.reference),
      field('Description', p.description),
      field('Created', longTime(p.created_at)),
      field('Updated', longTime(p.updated_at)),
      field('Version', String(p.version)),
    ),
    el('h3', {}, 'Metadata'),
    meta.length
      ? el('table', { class: 'kv' }, el('tbody', {}, meta.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, v)))))
      : el('p', { class: 'muted' }, 'None.'),
  ];
  if (canWrite()) parts.push(actionsFor(p, left));
  parts.push(
    ...listSection('Refunds', refunds, 'ul', 'refunds', (r) => [
      el('span', { class: 'amount' }, `${formatMinor(r.amount, r.currency)} ${r.currency}`),
      el('span', {}, r.reason.replaceAll('_', ' ')),
      r.note ? el('span', { class: 'muted' }, r.note) : null,
      el('span', { class: 'muted' }, `${actorText(r.actor)} · ${secondsTime(r.created_at)}`),
    ]),
    ...listSection('Audit trail', events, 'ol', 'trail', (e) => [
      el('span', { class: 'ev' }, e.type.replace('payment.', '')),
      el('span', {}, statusBadge(e.payment?.status), ' ', e.payment ? `${formatMinor(e.payment.amount, e.payment.currency)} ${e.payment.currency}` : ''),
      e.refund ? el('span', {}, `refund ${formatMinor(e.refund.amount, e.refund.currency)}`) : null,
      el('span', { class: 'muted' }, `#${e.seq} · by ${actorText(e.actor)} · ${secondsTime(e.at)}`),
    ]),
  );
  const focusedId = document.activeElement?.id;
  body.replaceChildren(...parts);
  if (focusedId && $(focusedId) && body.contains($(focusedId))) $(focusedId).focus();
}

function actionsFor(p, left) {
  const box = el('section', { class: 'actions', 'aria-label': 'Actions' }, el('h3', {}, 'Actions'));
  const next = TRANSITIONS[p.status] || [];
  if (next.length) {
    const form = el(
      'form',
      { class: 'inline-form', novalidate: true, onsubmit: (e) => (e.preventDefault(), changeStatus(p, form)) },
      el(
        'div',
        { class: 'f', dataset: { field: 'status' } },
        el('label', { for: 'd-status' }, 'New status'),
        el('select', { id: 'd-status', name: 'status' }, next.map((s) => el('option', { value: s }, s))),
        el('p', { class: 'field-error', role: 'alert' }),
      ),
      el('button', { type: 'submit', class: 'btn' }, 'Change status'),
      el('p', { class: 'field-error form-error', role: 'alert' }),
    );
    box.append(form);
  } else {
    box.append(el('p', { class: 'muted' }, `A ${p.status} payment cannot change status.`));
  }
  if (p.status === 'settled' && left > 0) {
    const form = el(
      'form',
      { class: 'inline-form refund-form', novalidate: true, onsubmit: (e) => (e.preventDefault(), refund(p, form)) },
      el(
        'div',
        { class: 'f', dataset: { field: 'amount' } },
        el('label', { for: 'r-amount' }, `Refund amount (${p.currency})`),
        el('input', { id: 'r-amount', name: 'amount', inputmode: 'decimal', autocomplete: 'off', value: plainMinor(left, p.currency) }),
        el('p', { class: 'field-error', role: 'alert' }),
      ),
      el(
        'div',
        { class: 'f', dataset: { field: 'reason' } },
        el('label', { for: 'r-reason' }, 'Reason'),
        el(
          'select',
          { id: 'r-reason', name: 'reason' },
          ['requested_by_customer', 'duplicate', 'fraudulent', 'other'].map((r) => el('option', { value: r, selected: r === 'requested_by_customer' }, r.replaceAll('_', ' '))),
        ),
        el('p', { class: 'field-error', role: 'alert' }),
      ),
      el(
        'div',
        { class: 'f f-wide', dataset: { field: 'note' } },
        el('label', { for: 'r-note' }, 'Note'),
        el('input', { id: 'r-note', name: 'note', maxlength: '500', autocomplete: 'off' }),
        el('p', { class: 'field-error', role: 'alert' }),
      ),
      el('button', { type: 'submit', class: 'btn' }, 'Refund'),
      el('p', { class: 'field-error form-error', role: 'alert' }),
    );
    box.append(form);
  }
  box.append(el('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: () => askDelete(p) }, 'Delete…'));
  return box;
}

async function write(form, fn) {
  clearFormErrors(form);
  const buttons = form.querySelectorAll('button');
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await fn();
  } catch (err) {
    showFormError(form, err);
    if (err.status === 412) reloadDetailSoon();
    return undefined;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function reloadDetailSoon() {
  const id = state.detail?.id;
  if (id)
    request('GET', `/v1/payments/${encodeURIComponent(id)}`)
      .then((p) => state.detail?.id === id && refreshDetail(p))
      .catch(() => {});
}

async function changeStatus(p, form) {
  const status = form.elements.status.value;
  const updated = await write(form, () =>
    request('PATCH', `/v1/payments/${encodeURIComponent(p.id)}`, { body: { status }, ifMatch: p.version, idempotent: true }),
  );
  if (updated) {
    toast(`Status changed to ${updated.status}.`, 'ok');
    applyOwn(updated, 'payment.updated');
  }
}

async function refund(p, form) {
  const r = parseMajor(form.elements.amount.value, p.currency);
  if (r.error) {
    setFieldError(form, 'amount', r.error);
    return;
  }
  const body = { amount: r.minor, reason: form.elements.reason.value };
  const note = form.elements.note.value.trim();
  if (note) body.note = note;
  const done = await write(form, () =>
    request('POST', `/v1/payments/${encodeURIComponent(p.id)}/refunds`, { body, ifMatch: p.version, idempotent: true }),
  );
  if (done) {
    toast(`Refunded ${formatMinor(done.amount, done.currency)} ${done.currency}.`, 'ok');
    reloadDetailSoon();
  }
}

function askDelete(p) {
  const d = $('confirm-dialog');
  const form = d.querySelector('form');
  clearFormErrors(form);
  $('confirm-text').textContent = `${p.payer} → ${p.payee}, ${formatMinor(p.amount, p.currency)} ${p.currency}. It disappears from lists; its audit trail is kept.`;
  d.dataset.id = p.id;
  d.showModal();
  $('confirm-delete').focus();
}

async function confirmDelete(e) {
  e.preventDefault();
  const d = $('confirm-dialog');
  const form = d.querySelector('form');
  const p = state.detail;
  if (!p || p.id !== d.dataset.id) return d.close();
  const ok = await write(form, () =>
    request('DELETE', `/v1/payments/${encodeURIComponent(p.id)}`, { ifMatch: p.version, idempotent: true }).then(() => true),
  );
  if (ok) {
    d.close();
    toast('Payment deleted.', 'ok');
    applyOwn({ ...p }, 'payment.deleted');
  }
}

// ---------------------------------------------------------------- new payment

function openNew() {
  if (!canWrite()) return;
  const d = $('new-dialog');
  const form = $('new-form');
  form.reset();
  $('n-currency').value = state.filters.currency || 'EUR';
  clearFormErrors(form);
  d.showModal();
  $('n-payer').focus();
}

async function submitNew(e) {
  e.preventDefault();
  const form = $('new-form');
  clearFormErrors(form);
  const v = (n) => form.elements[n].value;
  const body = {
    payer: v('payer').trim(),
    payee: v('payee').trim(),
    currency: v('currency'),
    method: v('method'),
  };
  let bad = false;
  if (!body.payer) (setFieldError(form, 'payer', 'enter who pays'), (bad = true));
  if (!body.payee) (setFieldError(form, 'payee', 'enter who is paid'), (bad = true));
  const amount = parseMajor(v('amount'), body.currency);
  if (amount.error) (setFieldError(form, 'amount', amount.error), (bad = true));
  if (bad) {
    form.querySelector('[aria-invalid]')?.focus();
    return;
  }
  body.amount = amount.minor;
  if (v('reference').trim()) body.reference = v('reference').trim();
  if (v('description').trim()) body.description = v('description').trim();
  const created = await write(form, () => request('POST', '/v1/payments', { body, idempotent: true }));
  if (created) {
    $('new-dialog').close();
    toast(`Payment created: ${formatMinor(created.amount, created.currency)} ${created.currency}.`, 'ok');
    applyOwn(created, 'payment.created');
  }
}

// ---------------------------------------------------------------- export

async function exportCsv() {
  const btn = $('export');
  btn.disabled = true;
  try {
    const params = { ...state.filters, order: state.order };
    const { blob, filename } = await download('/v1/payments/export.csv' + queryString(params), 'payments.csv');
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(`Exported ${filename}.`, 'ok');
  } catch (err) {
    toast(`Export failed: ${errorText(err)}`, 'error');
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- keys

function typing(t) {
  return t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return; // dialogs handle their own keys (Esc closes)
  if (e.key === 'Escape') {
    if (!$('detail').hidden) {
      e.preventDefault();
      closeDetail();
    } else if (typing(e.target)) e.target.blur();
    return;
  }
  if (typing(e.target) || $('dashboard').hidden) return;
  const row = e.target.closest?.('tr[data-id]');
  switch (e.key) {
    case '/':
      e.preventDefault();
      $('f-q').focus();
      $('f-q').select();
      break;
    case 'j':
    case 'ArrowDown':
      if (e.key === 'ArrowDown' && !row) return;
      e.preventDefault();
      move(1);
      break;
    case 'k':
    case 'ArrowUp':
      if (e.key === 'ArrowUp' && !row) return;
      e.preventDefault();
      move(-1);
      break;
    case 'Enter':
      if (row) {
        e.preventDefault();
        openDetail(row.dataset.id);
      }
      break;
    case 'n':
      if (canWrite()) {
        e.preventDefault();
        openNew();
      }
      break;
    case '?':
      e.preventDefault();
      $('help-dialog').showModal();
      break;
    default:
  }
}

// ---------------------------------------------------------------- sign-in and start

function fillCurrencies() {
  const codes = currencyCodes();
  $('f-currency').append(...codes.map((c) => el('option', { value: c }, c)));
  $('n-currency').append(...codes.map((c) => el('option', { value: c, title: currencyName(c) }, `${c} · ${currencyName(c)}`)));
}

function showSignin(message) {
  $('dashboard').hidden = true;
  $('signin').hidden = false;
  $('new-button').hidden = true;
  $('signout').hidden = true;
  $('who').hidden = true;
  $('token-error').textContent = message || '';
  setConn('OFFLINE');
  $('token').focus();
}

function signOut(message) {
  clearToken();
  state.stream?.stop();
  state.stream = null;
  state.me = null;
  closeDetail();
  showSignin(message);
}

async function whoAmI() {
  try {
    return await request('GET', '/v1/me');
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
}

async function signIn(e) {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) {
    $('token-error').textContent = 'Enter a token.';
    return;
  }
  setToken(t);
  let me;
  try {
    me = await whoAmI();
  } catch (err) {
    clearToken();
    $('token-error').textContent = errorText(err);
    return;
  }
  if (!me) {
    clearToken();
    $('token-error').textContent = 'That token was not accepted.';
    $('token').select();
    return;
  }
  $('token').value = '';
  start(me);
}

function start(me) {
  state.me = me;
  $('signin').hidden = true;
  $('dashboard').hidden = false;
  $('who').hidden = false;
  $('who').textContent = `${me.name} · ${me.role}`;
  $('signout').hidden = !getToken();
  $('new-button').hidden = !canWrite();
  document.body.classList.toggle('viewer', !canWrite());
  readUrl();
  fillFilterForm();
  state.stream = new Stream({
    onState: setConn,
    onEvent: applyEvent,
    onLive: (resumed) => {
      // First subscribe: the page loads after it, so nothing falls between
      // the page and the stream. A resume brings the backlog itself.
      if (!resumed || state.stale) reload();
      else scheduleStats();
    },
  });
  state.stream.start();
}

async function init() {
  fillCurrencies();
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => signOut(''));
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    const r = readFilterForm();
    if (r.error) {
      $('filter-error').textContent = r.error;
      return;
    }
    state.filters = r.filters;
    reload({ push: true });
  });
  $('f-currency').addEventListener('change', updateUnits);
  // choices apply at once; typed fields apply on Enter (or Apply)
  for (const id of ['f-status', 'f-currency', 'f-method', 'f-from', 'f-to'])
    $(id).addEventListener('change', () => $('filters').requestSubmit());
  $('f-more').addEventListener('click', () => {
    const open = $('filters').classList.toggle('open');
    $('f-more').setAttribute('aria-expanded', String(open));
  });
  $('f-clear').addEventListener('click', () => {
    state.filters = {};
    fillFilterForm();
    reload({ push: true });
  });
  $('order').addEventListener('click', () => {
    state.order = state.order === 'created_at.desc' ? 'created_at.asc' : 'created_at.desc';
    fillFilterForm();
    reload({ push: true });
  });
  $('export').addEventListener('click', exportCsv);
  const turn = (change) => () => {
    if (!change()) return;
    state.sel = -1;
    loadPage().then(() => $('table').scrollIntoView({ block: 'nearest' }));
  };
  $('next').addEventListener('click', turn(() => state.hasMore && state.cursors.push(state.nextCursor)));
  $('prev').addEventListener('click', turn(() => state.cursors.length > 1 && state.cursors.pop() !== undefined));
  $('first').addEventListener('click', turn(() => (state.cursors = [null])));
  $('fresh-button').addEventListener('click', () => reload());
  $('rows').addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-id]');
    if (!row) return;
    state.sel = [...$('rows').children].indexOf(row);
    markSelected(false);
    openDetail(row.dataset.id);
  });
  $('rows').addEventListener('focusin', (e) => {
    const row = e.target.closest('tr[data-id]');
    if (row) {
      state.sel = [...$('rows').children].indexOf(row);
      markSelected(false);
    }
  });
  $('detail-close').addEventListener('click', closeDetail);
  $('new-button').addEventListener('click', openNew);
  $('new-form').addEventListener('submit', submitNew);
  $('confirm-dialog').querySelector('form').addEventListener('submit', confirmDelete);
  $('help-button').addEventListener('click', () => $('help-dialog').showModal());
  for (const b of document.querySelectorAll('dialog [data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
  document.addEventListener('keydown', onKey);
  window.addEventListener('popstate', () => {
    if (!state.me) return;
    readUrl();
    fillFilterForm();
    state.cursors = [null];
    loadPage();
    loadStats();
  });

  let me;
  try {
    me = await whoAmI();
  } catch (err) {
    showSignin(`The server answered: ${errorText(err)}`);
    return;
  }
  if (me) start(me);
  else showSignin(getToken() ? 'Your token is no longer accepted.' : '');
}

init();
