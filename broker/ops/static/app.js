/* op7 operations centre: the dashboard's front end.
 *
 * Plain ES2020, no framework, no network access beyond this origin (the server's CSP forbids the rest anyway).
 * Data from the server comes from other countries' agencies: it is only ever put in the page as text
 * (textContent, createElement, Node.append of strings), never as HTML.
 *
 * Layout of this file: constants, state, DOM and time helpers, the API, filters, the case list, selection,
 * the detail panel (with its position plot), acknowledging, new-alert signals (banner, flash, sound),
 * the event stream and feed health, the keyboard, and start-up.
 */
'use strict';

// --- constants --------------------------------------------------------------------------------------------------

/** Server order, most urgent first (CAP): the same rule re-sorts cases that arrive over the event stream. */
const URGENCY = ['Immediate', 'Expected', 'Future', 'Past', 'Unknown'];
const SEVERITY = ['Extreme', 'Severe', 'Moderate', 'Minor', 'Unknown'];
const STATUSES = ['Actual', 'Exercise', 'Test'];
const TLP_LEVELS = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];
const MAX_AGES = ['1h', '6h', '24h', '7d'];

const FLASH_MS = 10_000;           // a new Immediate row flashes this long
const RELATIVE_EVERY_MS = 30_000;  // "35 min ago" texts are refreshed this often
const RESYNC_EVERY_MS = 120_000;   // the list is fetched again this often, in case an event was lost
const STREAM_SILENCE_MS = 30_000;  // health comes every ~5 s: this much silence means a dead connection
const FILTER_DEBOUNCE_MS = 350;    // typing in a text filter reloads once the typing pauses
const NOTICE_MS = 8_000;
const SVG_NS = 'http://www.w3.org/2000/svg';

// --- state ------------------------------------------------------------------------------------------------------

const state = {
  me: null,                 // {user, role, node, csrf}
  view: 'open',             // 'open' | 'closed'
  cases: [],                // SUMMARY objects of the current view, in display order
  rows: new Map(),          // case_id -> {el, key}: the row elements, kept so that flashing survives updates
  rowIds: new Map(),        // case_id -> DOM id of its row (case ids may hold characters unfit for an id)
  selectedId: null,
  selectedIndex: 0,         // where the selection was, to select a neighbour when its case leaves the list
  detailId: null,           // case shown in the detail panel
  detail: null,             // its DETAIL
  detailSeq: 0,
  known: new Set(),         // ids of every case seen since the page loaded: tells a new case from an old one
  alerted: new Set(),       // ids that already raised the new-alert signals
  flashUntil: new Map(),    // case_id -> ms timestamp
  banner: [],               // summaries of new Immediate alerts not yet dismissed nor acknowledged
  acking: new Set(),        // case ids with an acknowledgement in flight
  loadSeq: 0,               // the latest list request; older answers are dropped
  pending: null,            // case events that arrived while a list request was in flight
  reloadTimer: 0,
  stream: null,
  streamOpen: false,
  everOpened: false,
  lastStreamEventAt: 0,
  reconnectTimer: 0,
  reconnectDelay: 2000,
  health: null,
  sound: {wanted: true, ctx: null, firstGesture: true, unlockOnly: false},
};

// --- DOM helpers ------------------------------------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

/** Appends children: nodes as they are, anything else as text (never parsed as HTML). */
function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces a node's children; like appendChildren, skips null and flattens arrays (replaceChildren would
 * write "null" or "[object HTMLElement]"). */
function setChildren(node, ...children) {
  node.replaceChildren();
  return appendChildren(node, children);
}

/** createElement with attributes: `class`, `text` (textContent), `on<event>`; the rest as attributes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  return appendChildren(node, children);
}

function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  return appendChildren(node, children);
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function setTextIfChanged(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function isBlank(value) {
  return value === null || value === undefined || value === '' || (Array.isArray(value) && value.length === 0);
}

/** A value as text for the page; unknown values are shown as an em dash, not hidden, so absence is visible. */
function show(value) {
  if (isBlank(value)) return '—';
  if (Array.isArray(value)) return value.map(show).join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Family names are written in capitals, as police notices do, so given and family names are not swapped. */
function personName(given, family) {
  return [given, family ? String(family).toUpperCase() : ''].filter(Boolean).join(' ') || '(no name)';
}

// --- time -------------------------------------------------------------------------------------------------------

function parseTime(iso) {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : new Date(ms);
}

const pad = (n) => String(n).padStart(2, '0');
const utcDay = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
const utcHM = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
const localDay = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const localHM = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;

/** "12:04Z" (with the date unless today, or when `full`), then the browser's local time in smaller type. */
function timeEl(iso, {full = false} = {}) {
  const d = parseTime(iso);
  if (!d) return el('span', {class: 'muted', text: show(iso)});
  const withDate = full || utcDay(d) !== utcDay(new Date());
  const utc = `${withDate ? utcDay(d) + ' ' : ''}${utcHM(d)}Z`;
  const localWithDate = withDate && localDay(d) !== utcDay(d);
  const local = `${localWithDate ? localDay(d) + ' ' : ''}${localHM(d)} local`;
  return el('time', {datetime: d.toISOString(), class: 'time', title: d.toString()},
    el('span', {class: 'time-utc', text: utc}), ' ', el('span', {class: 'time-local', text: local}));
}

/** "35 min ago", "2 h 5 min ago", "3 d 4 h ago"; a time ahead of this clock reads "in …". */
function relativeText(d, now = Date.now()) {
  const seconds = Math.round((now - d.getTime()) / 1000);
  const ahead = seconds < 0;
  const s = Math.abs(seconds);
  if (s < 45) return ahead ? 'in under a minute' : 'just now';
  const minutes = Math.round(s / 60);
  let text;
  if (minutes < 60) text = `${minutes} min`;
  else if (minutes < 48 * 60) text = `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  else text = `${Math.floor(minutes / 1440)} d ${Math.floor((minutes % 1440) / 60)} h`;
  return ahead ? `in ${text}` : `${text} ago`;
}

/** A relative time that tickRelative() keeps up to date. */
function relativeEl(iso) {
  const d = parseTime(iso);
  if (!d) return null;
  return el('span', {class: 'rel', 'data-time': d.toISOString(), text: relativeText(d)});
}

function tickRelative() {
  const now = Date.now();
  for (const node of document.querySelectorAll('.rel[data-time]')) {
    node.textContent = relativeText(new Date(node.dataset.time), now);
  }
}

function timeValue(iso) {
  const d = parseTime(iso);
  return d ? d.getTime() : 0;
}

// --- API --------------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** JSON from this origin; POSTs carry the session's CSRF token; a 401 means the session ended: back to login. */
async function api(path, {method = 'GET'} = {}) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET') headers['X-CSRF-Token'] = state.me ? state.me.csrf : '';
  let response;
  try {
    response = await fetch(path, {method, headers, credentials: 'same-origin', cache: 'no-store'});
  } catch (err) {
    throw new ApiError('the dashboard server did not answer', 0);
  }
  if (response.status === 401) {
    location.assign('/login');
    throw new ApiError('the session ended: log in again', 401);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null; // not JSON: the status says enough
  }
  if (!response.ok) throw new ApiError((body && body.error) || `HTTP ${response.status}`, response.status);
  return body;
}

function caseUrl(caseId) {
  return `/api/cases/${encodeURIComponent(caseId)}`;
}

// --- session ----------------------------------------------------------------------------------------------------

async function loadMe() {
  state.me = await api('/api/me');
  $('#me-node').textContent = show(state.me.node);
  $('#me-user').textContent = show(state.me.user);
  $('#me-role').textContent = show(state.me.role);
  $('#logout-csrf').value = state.me.csrf || '';
  document.body.classList.toggle('viewer', !canAck());
}

function canAck() {
  return Boolean(state.me && state.me.role === 'operator');
}

// --- filters ----------------------------------------------------------------------------------------------------

function checkedValues(kind, values) {
  return values.filter((value) => $(`#filter-${kind}-${value}`).checked);
}

/** "fr; es  de" -> "FR,ES,DE": the server gets one canonical form. */
function normaliseCountries(text) {
  return text.split(/[\s,;]+/).filter(Boolean).map((c) => c.toUpperCase()).join(',');
}

function readFilters() {
  return {
    status: checkedValues('status', STATUSES),
    severity: checkedValues('severity', SEVERITY),
    country: normaliseCountries($('#filter-country').value),
    tlp: $('#filter-tlp').value,
    max_age: $('#filter-max-age').value,
    q: $('#filter-q').value.trim(),
  };
}

/** The query of GET /api/cases; the same parameters are kept in the page's address, so a wall screen's
 * bookmark opens with its filters. Status and severity are always sent: the server's default cannot differ. */
function filterParams(filters) {
  const params = new URLSearchParams({view: state.view});
  params.set('status', filters.status.join(','));
  params.set('severity', filters.severity.join(','));
  for (const key of ['country', 'tlp', 'max_age', 'q']) {
    if (filters[key]) params.set(key, filters[key]);
  }
  return params;
}

function rememberFilters(filters) {
  // Commas left readable in the address bar ("status=Actual,Exercise").
  const query = String(filterParams(filters)).replace(/%2C/g, ',');
  history.replaceState(null, '', `${location.pathname}?${query}`);
}

/** Filters from the address bar (a bookmark); anything unknown is ignored. */
function restoreFilters() {
  const params = new URLSearchParams(location.search);
  if (params.get('view') === 'closed') state.view = 'closed';
  const setChecks = (kind, values, text) => {
    if (text === null) return;
    const wanted = new Set(text.split(','));
    for (const value of values) $(`#filter-${kind}-${value}`).checked = wanted.has(value);
  };
  setChecks('status', STATUSES, params.get('status'));
  setChecks('severity', SEVERITY, params.get('severity'));
  $('#filter-country').value = params.get('country') || '';
  if (TLP_LEVELS.includes(params.get('tlp'))) $('#filter-tlp').value = params.get('tlp');
  if (MAX_AGES.includes(params.get('max_age'))) $('#filter-max-age').value = params.get('max_age');
  $('#filter-q').value = params.get('q') || '';
}

function setFilterError(text) {
  $('#filter-error').textContent = text;
  $('#filters').classList.toggle('has-error', Boolean(text));
}

let filterTimer = 0;
function onFilterChange(event) {
  clearTimeout(filterTimer);
  const typed = event.type === 'input' && event.target.type !== 'checkbox';
  filterTimer = setTimeout(() => loadCases(), typed ? FILTER_DEBOUNCE_MS : 0);
}

function initFilters() {
  const form = $('#filters');
  form.addEventListener('input', onFilterChange);
  form.addEventListener('change', onFilterChange);
  form.addEventListener('submit', (event) => {
    event.preventDefault(); // Enter in a text filter: reload now, never navigate
    clearTimeout(filterTimer);
    loadCases();
  });
}

// --- loading the list -------------------------------------------------------------------------------------------

/** GET /api/cases with the filters. Case events that arrive meanwhile are replayed on top of the answer,
 * since the answer may predate them. */
async function loadCases() {
  const filters = readFilters();
  rememberFilters(filters);
  if (!filters.status.length || !filters.severity.length) {
    setFilterError('Tick at least one status and one severity.');
    state.loadSeq += 1; // an answer still on its way is for other filters: dropped
    state.pending = null;
    state.cases = [];
    renderList();
    return;
  }
  const seq = ++state.loadSeq;
  state.pending = [];
  if (!state.cases.length) setListStatus('loading…');
  let body;
  try {
    body = await api(`/api/cases?${filterParams(filters)}`);
  } catch (err) {
    if (seq !== state.loadSeq) return;
    state.pending = null;
    if (err.status === 400) setFilterError(err.message);
    else notify(`The cases could not be loaded: ${err.message}`, 'error');
    renderListStatus();
    return;
  }
  if (seq !== state.loadSeq) return; // a newer request (other filters) answers instead
  setFilterError('');
  const cases = body && Array.isArray(body.cases) ? body.cases : [];
  for (const c of cases) state.known.add(c.case_id);
  state.cases = cases.slice();
  const pending = state.pending || [];
  state.pending = null;
  for (const c of pending) placeCase(c);
  renderList();
}

/** Several events in a row (or a filter only the server can judge) cause one reload, not many. */
function scheduleReload() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(() => loadCases(), 300);
}

/** Ids of the open Actual cases, to know which are new when the stream comes back after a gap (alarm = true:
 * those not seen before are announced, since their events were lost while the stream was down). */
async function syncOpenActual({alarm}) {
  let body;
  try {
    body = await api('/api/cases?view=open&status=Actual');
  } catch (err) {
    return; // the list load reports errors; this is only for the signals
  }
  for (const c of (body && body.cases) || []) {
    if (alarm && !state.known.has(c.case_id) && isAlarming(c)) raiseAlarm(c);
    state.known.add(c.case_id);
  }
}

// --- the case list: order and membership ------------------------------------------------------------------------

function rank(list, value) {
  const i = list.indexOf(value);
  return i < 0 ? list.length : i;
}

function compareCases(a, b) {
  return rank(URGENCY, a.urgency) - rank(URGENCY, b.urgency)
    || rank(SEVERITY, a.severity) - rank(SEVERITY, b.severity)
    || timeValue(b.updated_at) - timeValue(a.updated_at)
    || (a.case_id < b.case_id ? -1 : a.case_id > b.case_id ? 1 : 0); // the server's last tie-break too
}

function inCurrentView(c) {
  return state.view === 'open' ? c.state === 'open' : c.state !== 'open';
}

/** Whether a case from the stream belongs in the list: 'in', 'out', or 'ask' when only the server can tell
 * (country, text and age filters, and mixed statuses, follow the server's own rules). */
function membership(c) {
  if (!inCurrentView(c)) return 'out';
  const filters = readFilters();
  if (!filters.severity.includes(c.severity)) return 'out';
  if (filters.tlp && tlpLabel(c.tlp) !== filters.tlp) return 'out';
  if (c.mixed_status) return 'ask';
  if (!filters.status.includes(c.status)) return 'out';
  if (filters.country || filters.q || filters.max_age) return 'ask';
  return 'in';
}

/** Puts a case where the sort rule says, leaving the others in the server's order. */
function insertSorted(c) {
  const at = state.cases.findIndex((other) => compareCases(c, other) < 0);
  if (at < 0) state.cases.push(c);
  else state.cases.splice(at, 0, c);
}

/** Applies one summary to the list: update in place (re-sorted), insert, or take out. */
function placeCase(c) {
  const index = state.cases.findIndex((other) => other.case_id === c.case_id);
  const verdict = membership(c);
  if (index >= 0) state.cases.splice(index, 1);
  if (verdict === 'in' || (verdict === 'ask' && index >= 0)) insertSorted(c);
  if (verdict === 'ask') scheduleReload();
  return {was: index >= 0, now: verdict !== 'out'};
}

/** A DETAIL (from an acknowledgement) as a SUMMARY: the list wants victims as a count and names. */
function toSummary(detail) {
  if (!Array.isArray(detail.victims)) return detail;
  const names = detail.victims.map((v) => personName(v.given_names, v.family_names));
  return {...detail, victims: {count: names.length, names}};
}

// --- the case list: rendering -----------------------------------------------------------------------------------

function tlpLabel(tlp) {
  return tlp ? String(tlp).replace('_', '+').toUpperCase() : '';
}

function tlpClass(tlp) {
  return `tlp tlp-${tlpLabel(tlp).replace('+', '-').toLowerCase() || 'unknown'}`;
}

function badge(kind, value) {
  const text = value || 'Unknown';
  return el('span', {class: `badge ${kind} ${kind}-${String(text).toLowerCase()}`, title: `${kind}: ${text}`},
    String(text).toUpperCase());
}

function tlpBadge(tlp) {
  return el('span', {class: tlpClass(tlp), title: 'Traffic Light Protocol'}, `TLP:${tlpLabel(tlp) || '?'}`);
}

/** NEW: never acknowledged here; CHANGED: something arrived since the last acknowledgement. */
function changeLabel(c) {
  if (!c.unacknowledged_change) return null;
  const fresh = !c.acknowledged || c.acknowledged.length === 0;
  return el('span', {class: `label ${fresh ? 'label-new' : 'label-changed'}`}, fresh ? 'NEW' : 'CHANGED');
}

/** Exercise and Test are written out on every row, large, so that they are never taken for real alerts. */
function statusLabels(c) {
  const labels = [];
  if (c.status === 'Exercise') labels.push(el('span', {class: 'label label-exercise'}, 'EXERCISE'));
  if (c.status === 'Test') labels.push(el('span', {class: 'label label-test'}, 'TEST'));
  if (c.mixed_status) {
    if (c.status === 'Actual') labels.push(el('span', {class: 'label label-actual'}, 'ACTUAL'));
    labels.push(el('span', {class: 'label label-mixed', title: 'The messages of this case do not all have the same status'},
      'MIXED STATUS'));
  }
  return labels;
}

function stateLabel(c) {
  if (c.state === 'open') return null;
  if (c.state === 'expired') return el('span', {class: 'label label-closed'}, 'EXPIRED');
  const how = c.closed_by === 'AllClear' ? 'ALL CLEAR' : c.closed_by === 'Cancel' ? 'CANCELLED' : 'CLOSED';
  return el('span', {class: 'label label-closed'}, how);
}

function latestAck(c) {
  const acks = Array.isArray(c.acknowledged) ? c.acknowledged : [];
  return acks.reduce((last, a) => (!last || timeValue(a.at) >= timeValue(last.at) ? a : last), null);
}

function ackMarker(c) {
  const last = latestAck(c);
  if (!last) return el('span', {class: 'ack-marker ack-none'}, 'not acknowledged');
  const elsewhere = state.me && last.node && last.node !== state.me.node ? ` (${last.node})` : '';
  const more = c.acknowledged.length > 1 ? ` +${c.acknowledged.length - 1}` : '';
  return el('span', {class: 'ack-marker'}, `ack by ${show(last.operator)}${elsewhere} `, timeEl(last.at), more);
}

function lastSeenFacts(c) {
  const seen = c.last_seen;
  if (!seen) return el('span', {class: 'fact muted'}, 'last seen: unknown');
  return el('span', {class: 'fact'},
    el('span', {class: 'fact-label'}, 'Last seen '),
    el('span', {class: 'place'}, show(seen.place)), ', ',
    el('span', {class: 'country'}, show(seen.country)), ' · ',
    relativeEl(seen.at) || show(seen.at));
}

function victimFacts(c) {
  const v = c.victims || {count: 0, names: []};
  const names = Array.isArray(v.names) ? v.names : [];
  const count = Number.isFinite(v.count) ? v.count : names.length;
  const unnamed = count - names.length;
  const text = count === 1 ? '1 victim' : `${count} victims`;
  return el('span', {class: 'fact'}, el('span', {class: 'fact-label'}, `${text}: `),
    names.join(', ') || 'no name given', unnamed > 0 ? ` +${unnamed} unnamed` : '');
}

function rowClasses(c) {
  const classes = ['case-row'];
  if (c.unacknowledged_change) classes.push('unacked', latestAck(c) ? 'changed' : 'new');
  if (c.status === 'Exercise') classes.push('exercise');
  if (c.status === 'Test') classes.push('test');
  if (c.mixed_status) classes.push('mixed');
  if (c.state !== 'open') classes.push('closed');
  if (c.case_id === state.selectedId) classes.push('selected');
  if ((state.flashUntil.get(c.case_id) || 0) > Date.now()) classes.push('flash');
  return classes.join(' ');
}

function rowContent(c) {
  const lang = Array.isArray(c.languages) && c.languages[0] ? c.languages[0] : null;
  return [
    el('div', {class: 'row-badges'}, badge('urgency', c.urgency), badge('severity', c.severity)),
    el('div', {class: 'row-main'},
      el('div', {class: 'labels'}, changeLabel(c), statusLabels(c), stateLabel(c)),
      el('p', {class: 'row-headline', lang}, show(c.headline)),
      el('p', {class: 'row-facts'}, lastSeenFacts(c), victimFacts(c))),
    el('div', {class: 'row-side'},
      tlpBadge(c.tlp),
      el('span', {class: 'issuer'}, show(c.issuer && c.issuer.node)),
      el('span', {class: 'updated'}, 'updated ', timeEl(c.updated_at)),
      ackMarker(c)),
  ];
}

function rowDomId(caseId) {
  if (!state.rowIds.has(caseId)) state.rowIds.set(caseId, `case-row-${state.rowIds.size + 1}`);
  return state.rowIds.get(caseId);
}

/** The row of a case, built or brought up to date. The element is kept across updates so that its flash
 * animation is not restarted by every event. */
function upsertRow(c) {
  let row = state.rows.get(c.case_id);
  const key = JSON.stringify(c);
  if (!row) {
    const node = el('li', {role: 'option', id: rowDomId(c.case_id), 'data-case-id': c.case_id});
    node.addEventListener('click', () => {
      select(c.case_id);
      openDetail(c.case_id);
    });
    row = {el: node, key: null};
    state.rows.set(c.case_id, row);
  }
  if (row.key !== key) {
    setChildren(row.el, ...rowContent(c));
    row.key = key;
  }
  row.el.className = rowClasses(c);
  row.el.setAttribute('aria-selected', String(c.case_id === state.selectedId));
  return row.el;
}

/** Brings the list element in line with state.cases, moving only rows that are out of place. */
function renderList() {
  const list = $('#cases');
  const wanted = new Set(state.cases.map((c) => c.case_id));
  for (const [id, row] of state.rows) {
    if (!wanted.has(id)) {
      row.el.remove();
      state.rows.delete(id);
    }
  }
  let cursor = list.firstElementChild;
  for (const c of state.cases) {
    const node = upsertRow(c);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
  keepSelection();
  renderEmpty();
  renderListStatus();
}

function renderEmpty() {
  const empty = $('#cases-empty');
  empty.hidden = state.cases.length > 0;
  empty.textContent = state.view === 'open' ? 'No open case matches the filters.' : 'No closed case matches the filters.';
}

function setListStatus(text) {
  $('#list-status').textContent = text;
}

function renderListStatus() {
  const unacked = state.cases.filter((c) => c.unacknowledged_change).length;
  const what = state.view === 'open' ? 'open' : 'closed';
  const n = state.cases.length;
  setListStatus(`${n} ${what} ${n === 1 ? 'case' : 'cases'}${unacked ? `, ${unacked} not acknowledged` : ''}`);
  // The browser tab says how many wait, for a dashboard left in a background tab.
  document.title = unacked ? `(${unacked}) op7 operations centre` : 'op7 operations centre';
}

function renderView() {
  for (const view of ['open', 'closed']) {
    const tab = $(`#view-${view}`);
    const selected = state.view === view;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  $('#cases-panel').setAttribute('aria-labelledby', `view-${state.view}`);
  $('#cases').setAttribute('aria-label',
    state.view === 'open' ? 'Open cases, most urgent first' : 'Closed and expired cases, most urgent first');
  document.body.dataset.view = state.view;
}

function setView(view) {
  if (view === state.view) return;
  state.view = view;
  state.cases = [];
  state.selectedId = null;
  state.selectedIndex = 0;
  renderView();
  renderList();
  loadCases();
}

// --- selection --------------------------------------------------------------------------------------------------

function select(caseId, {scroll = true} = {}) {
  state.selectedId = caseId;
  const index = state.cases.findIndex((c) => c.case_id === caseId);
  if (index >= 0) state.selectedIndex = index;
  renderSelection(scroll);
}

/** When the selected case leaves the list, its neighbour is selected, so j/k carry on from the same place. */
function keepSelection() {
  if (!state.cases.length) {
    state.selectedId = null;
  } else if (!state.cases.some((c) => c.case_id === state.selectedId)) {
    const index = Math.min(state.selectedIndex, state.cases.length - 1);
    state.selectedId = state.cases[index].case_id;
  }
  const index = state.cases.findIndex((c) => c.case_id === state.selectedId);
  if (index >= 0) state.selectedIndex = index;
  renderSelection(false);
}

function renderSelection(scroll) {
  const list = $('#cases');
  for (const [id, row] of state.rows) {
    const selected = id === state.selectedId;
    row.el.classList.toggle('selected', selected);
    row.el.setAttribute('aria-selected', String(selected));
  }
  const row = state.rows.get(state.selectedId);
  if (row) {
    list.setAttribute('aria-activedescendant', row.el.id);
    if (scroll) row.el.scrollIntoView({block: 'nearest'});
  } else {
    list.removeAttribute('aria-activedescendant');
  }
}

/** j/k: moves the selection; an open detail follows it, so cases can be read one after the other. */
function moveSelection(delta) {
  if (!state.cases.length) return;
  const current = state.cases.findIndex((c) => c.case_id === state.selectedId);
  const next = Math.max(0, Math.min(state.cases.length - 1, (current < 0 ? -1 : current) + delta));
  selectAt(next);
}

function selectAt(index) {
  if (!state.cases.length) return;
  const c = state.cases[Math.max(0, Math.min(state.cases.length - 1, index))];
  select(c.case_id);
  focusListIfIdle();
  if (state.detailId && state.detailId !== c.case_id) openDetail(c.case_id, {focus: false});
}

function selectNextUnacked() {
  const n = state.cases.length;
  const start = state.cases.findIndex((c) => c.case_id === state.selectedId);
  for (let step = 1; step <= n; step++) {
    const c = state.cases[(start + step + n) % n];
    if (c.unacknowledged_change) return selectAt((start + step + n) % n);
  }
  notify('Every case in the list is acknowledged.');
}

/** Keyboard use from nowhere in particular lands on the list, so that the screen reader follows it. */
function focusListIfIdle() {
  const active = document.activeElement;
  if (!active || active === document.body) $('#cases').focus({preventScroll: true});
}

// --- the detail panel -------------------------------------------------------------------------------------------

async function openDetail(caseId, {focus = true} = {}) {
  const panel = $('#detail');
  const switching = state.detailId !== caseId;
  state.detailId = caseId;
  panel.dataset.caseId = caseId;
  panel.hidden = false;
  document.body.classList.add('detail-open');
  if (switching) {
    state.detail = null;
    $('#detail-headline').textContent = caseId;
    $('#detail-labels').replaceChildren();
    setChildren($('#detail-body'), el('p', {class: 'muted'}, 'Loading…'));
    renderAckBar();
  }
  if (focus) panel.focus({preventScroll: true});
  await refreshDetail(caseId);
}

/** Fetches the DETAIL again (on opening, and when the case changes); answers for another case are dropped. */
async function refreshDetail(caseId) {
  const seq = ++state.detailSeq;
  let detail;
  try {
    detail = await api(caseUrl(caseId));
  } catch (err) {
    if (seq !== state.detailSeq || state.detailId !== caseId) return;
    if (!state.detail) setChildren($('#detail-body'), el('p', {class: 'error'}, `The case could not be loaded: ${err.message}`));
    else notify(`The case could not be refreshed: ${err.message}`, 'error');
    return;
  }
  if (seq !== state.detailSeq || state.detailId !== caseId) return;
  showDetail(detail);
}

function showDetail(detail) {
  const body = $('#detail-body');
  const scroll = $('#detail').scrollTop;
  const again = state.detail && state.detail.case_id === detail.case_id;
  state.detail = detail;
  renderDetail(detail);
  if (again) $('#detail').scrollTop = scroll; // an update must not throw the reader back to the top
  body.dataset.loaded = 'true';
}

let detailTimer = 0;
function refreshDetailSoon(caseId) {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => {
    if (state.detailId === caseId) refreshDetail(caseId);
  }, 250);
}

function closeDetail() {
  if (!state.detailId) return;
  const panel = $('#detail');
  const hadFocus = panel.contains(document.activeElement);
  state.detailId = null;
  state.detail = null;
  state.detailSeq += 1;
  panel.hidden = true;
  panel.dataset.caseId = '';
  document.body.classList.remove('detail-open');
  if (hadFocus || document.activeElement === document.body) $('#cases').focus({preventScroll: true});
  renderSelection(true);
}

function renderDetail(d) {
  const panel = $('#detail');
  panel.className = `detail ${d.status === 'Exercise' ? 'exercise' : ''} ${d.status === 'Test' ? 'test' : ''} ${d.mixed_status ? 'mixed' : ''}`;
  setChildren($('#detail-labels'), ...detailLabels(d));
  const headline = $('#detail-headline');
  headline.textContent = show(d.headline);
  if (d.languages && d.languages[0]) headline.lang = d.languages[0];
  else headline.removeAttribute('lang');
  setChildren($('#detail-body'),
    summarySection(d),
    textSections(d),
    lastSeenSection(d),
    victimsSection(d),
    suspectsSection(d),
    vehiclesSection(d),
    ransomSection(d),
    issuerSection(d),
    acksSection(d),
    historySection(d),
    otherSection(d),
  );
  renderAckBar();
}

function detailLabels(d) {
  return [
    changeLabel(d),
    statusLabels(d),
    stateLabel(d),
    badge('urgency', d.urgency),
    badge('severity', d.severity),
    tlpBadge(d.tlp),
  ];
}

function section(title, ...children) {
  return el('section', {class: 'detail-section'}, el('h3', {}, title), children);
}

/** A definition list; values may be strings or nodes. */
function fields(pairs) {
  const dl = el('dl', {class: 'fields'});
  for (const [name, value] of pairs) {
    const shown = value instanceof Node ? value : show(value);
    dl.append(el('div', {class: 'field'}, el('dt', {}, name),
      el('dd', {class: isBlank(value) ? 'muted' : null}, shown)));
  }
  return dl;
}

function stateText(d) {
  if (d.state === 'open') return 'open';
  if (d.state === 'expired') return 'expired';
  return `closed (${d.closed_by === 'AllClear' ? 'all clear' : d.closed_by === 'Cancel' ? 'cancelled' : show(d.closed_by)})`;
}

function statusText(d) {
  if (!d.mixed_status || !Array.isArray(d.history)) return show(d.status);
  const counts = {};
  for (const h of d.history) counts[h.status] = (counts[h.status] || 0) + 1;
  const parts = Object.entries(counts).map(([status, n]) => `${status} ×${n}`);
  return `${show(d.status)} (mixed: ${parts.join(', ')})`;
}

function summarySection(d) {
  return section('Case',
    fields([
      ['Case', d.case_id],
      ['State', stateText(d)],
      ['Status', statusText(d)],
      ['Urgency', d.urgency],
      ['Severity', d.severity],
      ['TLP', tlpLabel(d.tlp) ? `TLP:${tlpLabel(d.tlp)}` : null],
      ['First sent', timeEl(d.first_sent_at, {full: true})],
      ['Updated', el('span', {}, timeEl(d.updated_at, {full: true}), ' ', relativeEl(d.updated_at))],
      ['Expires', d.expires_at ? el('span', {}, timeEl(d.expires_at, {full: true}), ' ', relativeEl(d.expires_at)) : null],
      ['Languages', d.languages],
      ['Last message', d.last_message_id],
    ]));
}

function languageName(tag) {
  try {
    const names = new Intl.DisplayNames(['en'], {type: 'language'});
    const name = names.of(tag);
    return name && name !== tag ? `${tag} · ${name}` : tag;
  } catch (err) {
    return String(tag); // not a valid BCP 47 tag: shown as sent
  }
}

/** Headline, description and instruction in every language, the first language first; each block carries
 * its lang attribute so that screen readers pronounce it right. */
function textSections(d) {
  const languages = Array.isArray(d.languages) ? d.languages : [];
  const texts = [{language: languages[0] || '', headline: d.headline, description: d.description, instruction: d.instruction}];
  for (const t of Array.isArray(d.translations) ? d.translations : []) texts.push(t);
  return texts.map((t, i) => el('section', {class: `detail-section text-block${i ? ' translation' : ''}`, lang: t.language || null},
    el('h3', {lang: 'en'}, i ? `Translation: ${languageName(t.language)}` : `Alert text${t.language ? `: ${languageName(t.language)}` : ''}`),
    el('p', {class: 'text-headline'}, show(t.headline)),
    el('h4', {lang: 'en'}, 'Description'),
    el('p', {class: `text-body${isBlank(t.description) ? ' muted' : ''}`}, show(t.description)),
    el('h4', {lang: 'en'}, 'Instruction'),
    el('p', {class: `text-body instruction${isBlank(t.instruction) ? ' muted' : ''}`}, show(t.instruction))));
}

function lastSeenSection(d) {
  const seen = d.last_seen;
  if (!seen) return section('Last seen', el('p', {class: 'muted'}, 'Not known.'));
  const pos = seen.position;
  const lat = pos ? Number(pos.latitude) : NaN;
  const lon = pos ? Number(pos.longitude) : NaN;
  const hasPos = Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180;
  return section('Last seen',
    fields([
      ['Place', seen.place],
      ['Country', seen.country],
      ['Time', el('span', {}, timeEl(seen.at, {full: true}), ' ', relativeEl(seen.at))],
      ['Position', hasPos ? coordinatesText(lat, lon) : null],
    ]),
    hasPos ? positionPlot(lat, lon) : null);
}

// --- the position plot ------------------------------------------------------------------------------------------

function hemisphere(value, positive, negative) {
  return value < 0 ? negative : positive;
}

/** Degrees, minutes, seconds to a tenth; counted in whole tenths so that rounding never writes 60.0″. */
function dms(value) {
  const tenths = Math.round(Math.abs(value) * 36000);
  const deg = Math.floor(tenths / 36000);
  const min = Math.floor((tenths % 36000) / 600);
  const sec = (tenths % 600) / 10;
  return `${deg}° ${min}′ ${sec.toFixed(1)}″`;
}

/** Decimal degrees, then degrees-minutes-seconds, as read out over a radio. */
function coordinatesText(lat, lon) {
  const decimal = `${Math.abs(lat).toFixed(4)}° ${hemisphere(lat, 'N', 'S')}, ${Math.abs(lon).toFixed(4)}° ${hemisphere(lon, 'E', 'W')}`;
  return `${decimal} (${dms(lat)} ${hemisphere(lat, 'N', 'S')}, ${dms(lon)} ${hemisphere(lon, 'E', 'W')}); ` +
    `decimal ${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}

function wrapLongitude(lon) {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

/** Graticule label spacing: the smallest of 1°, 2°, 5° that leaves `minGap` units between labels. */
function labelStep(unitsPerDegree, minGap) {
  return [1, 2, 5, 10].find((step) => step * unitsPerDegree >= minGap) || 10;
}

/** A 10°×10° box around the point, with a 1° graticule, labels and the point: no map tiles, nothing fetched.
 * Longitudes are scaled by the cosine of the latitude (equirectangular at the point) so that the box's
 * proportions match the ground around it; the drawing keeps one size (a fixed viewBox), the box centred in it. */
function positionPlot(lat, lon) {
  const SPAN = 10;
  const VIEW_W = 480;
  const VIEW_H = 420;
  const H = 340;
  const TOP = 20;
  const W = Math.round(H * Math.max(Math.cos((lat * Math.PI) / 180), 0.3));
  const LEFT = Math.max(70, (VIEW_W - W) / 2);
  const lat0 = Math.min(Math.max(lat - SPAN / 2, -90), 90 - SPAN);
  const lat1 = lat0 + SPAN;
  const lon0 = lon - SPAN / 2;
  const x = (v) => LEFT + ((v - lon0) / SPAN) * W;
  const y = (v) => TOP + ((lat1 - v) / SPAN) * H;
  const coords = `${Math.abs(lat).toFixed(4)}° ${hemisphere(lat, 'N', 'S')}, ${Math.abs(lon).toFixed(4)}° ${hemisphere(lon, 'E', 'W')}`;

  const root = svg('svg', {
    class: 'plot', viewBox: `0 0 ${Math.max(VIEW_W, LEFT + W + 20)} ${VIEW_H}`, role: 'img',
    'aria-label': `Last seen position ${coords}, on a 10 by 10 degree grid`,
  });
  root.append(svg('rect', {class: 'plot-frame', x: LEFT, y: TOP, width: W, height: H}));
  appendGraticule(root, {lat0, lat1, lon0, lon1: lon0 + SPAN, x, y, left: LEFT, top: TOP, width: W, height: H});

  const px = x(lon);
  const py = y(lat);
  root.append(
    svg('line', {class: 'plot-cross', x1: LEFT, x2: LEFT + W, y1: py, y2: py}),
    svg('line', {class: 'plot-cross', x1: px, x2: px, y1: TOP, y2: TOP + H}),
    svg('circle', {class: 'plot-ring', cx: px, cy: py, r: 14}),
    svg('circle', {class: 'plot-point', cx: px, cy: py, r: 7}),
    // Centred under the point (over it near the bottom edge), with a dark halo over the grid lines.
    svg('text', {class: 'plot-coords', x: px, y: py > TOP + H - 40 ? py - 24 : py + 38, 'text-anchor': 'middle'}, coords),
  );
  return el('figure', {class: 'plot-figure'}, root,
    el('figcaption', {}, `Position ${coords}. Grid 1°, box 10° × 10° around the point; no map.`));
}

/** Graticule lines every degree; labels every 1, 2 or 5 degrees, as many as fit. */
function appendGraticule(root, g) {
  const latStep = labelStep(g.height / 10, 28);
  for (let v = Math.ceil(g.lat0); v <= Math.floor(g.lat1); v++) {
    root.append(svg('line', {class: 'plot-grid', x1: g.left, x2: g.left + g.width, y1: g.y(v), y2: g.y(v)}));
    if (v % latStep === 0) {
      root.append(svg('text', {class: 'plot-label', x: g.left - 8, y: g.y(v) + 5, 'text-anchor': 'end'},
        `${Math.abs(v)}°${v === 0 ? '' : hemisphere(v, 'N', 'S')}`));
    }
  }
  const lonStep = labelStep(g.width / 10, 56);
  for (let v = Math.ceil(g.lon0); v <= Math.floor(g.lon1); v++) {
    root.append(svg('line', {class: 'plot-grid', x1: g.x(v), x2: g.x(v), y1: g.top, y2: g.top + g.height}));
    const w = wrapLongitude(v);
    if (v % lonStep === 0) {
      root.append(svg('text', {class: 'plot-label', x: g.x(v), y: g.top + g.height + 24, 'text-anchor': 'middle'},
        `${Math.abs(w)}°${w === 0 || Math.abs(w) === 180 ? '' : hemisphere(w, 'E', 'W')}`));
    }
  }
}

// --- the detail: people, vehicles, issuer, acknowledgements, history ---------------------------------------------

function victimCard(v, i) {
  const photo = v.photo
    ? el('span', {class: 'photo-ref'},
      el('span', {class: 'mono selectable'}, show(v.photo.uri)), ' · ', show(v.photo.media_type),
      ' · SHA-256 ', el('span', {class: 'mono selectable'}, show(v.photo.sha256)))
    : null;
  return el('article', {class: 'card'},
    el('h4', {}, `Victim ${i + 1}: ${personName(v.given_names, v.family_names)}`),
    fields([
      ['Given names', v.given_names],
      ['Family names', v.family_names],
      ['Date of birth', v.date_of_birth],
      ['Age', isBlank(v.age_years) ? null : `${v.age_years} years`],
      ['Sex', v.sex],
      ['Height', isBlank(v.height_cm) ? null : `${v.height_cm} cm`],
      ['Nationalities', v.nationalities],
      ['Distinguishing marks', v.distinguishing_marks],
      ['Clothing', v.clothing],
      ['Photo (not loaded)', photo],
    ]));
}

function victimsSection(d) {
  const victims = Array.isArray(d.victims) ? d.victims : [];
  return section(`Victims (${victims.length})`,
    victims.length ? victims.map(victimCard) : el('p', {class: 'muted'}, 'None given.'));
}

function suspectsSection(d) {
  const suspects = Array.isArray(d.suspects) ? d.suspects : [];
  return section(`Suspects (${suspects.length})`,
    suspects.length ? suspects.map((s, i) => el('article', {class: 'card'},
      el('h4', {}, `Suspect ${i + 1}${s.given_names || s.family_names ? `: ${personName(s.given_names, s.family_names)}` : ''}`),
      fields([
        ['Description', s.description],
        ['Given names', s.given_names],
        ['Family names', s.family_names],
        ['Sex', s.sex],
        ['Age', isBlank(s.age_years) ? null : `${s.age_years} years`],
        ['Nationalities', s.nationalities],
      ]))) : el('p', {class: 'muted'}, 'None given.'));
}

function table(caption, headers, rows) {
  return el('table', {class: 'data'},
    caption ? el('caption', {class: 'visually-hidden'}, caption) : null,
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)))),
    el('tbody', {}, rows));
}

function vehiclesSection(d) {
  const vehicles = Array.isArray(d.vehicles) ? d.vehicles : [];
  if (!vehicles.length) return section('Vehicles (0)', el('p', {class: 'muted'}, 'None given.'));
  return section(`Vehicles (${vehicles.length})`, table('Vehicles',
    ['Plate', 'Registration', 'Make', 'Model', 'Colour'],
    vehicles.map((v) => el('tr', {},
      el('td', {class: 'mono plate'}, show(v.plate)), el('td', {}, show(v.registration_country)),
      el('td', {}, show(v.make)), el('td', {}, show(v.model)), el('td', {}, show(v.colour))))));
}

function money(m) {
  if (!m || typeof m !== 'object') return show(m);
  return `${show(m.amount)} ${show(m.currency)}`;
}

function ransomSection(d) {
  const r = d.ransom;
  if (!r) return section('Ransom', el('p', {class: 'muted'}, 'No demand known.'));
  const known = new Set(['demand', 'channel']);
  const extra = Object.entries(r).filter(([key]) => !known.has(key));
  return section('Ransom', fields([
    ['Demand', r.demand ? money(r.demand) : null],
    ['Channel', r.channel],
    ...extra,
  ]));
}

function issuerSection(d) {
  const i = d.issuer || {};
  return section('Issuer',
    fields([
      ['Node', i.node],
      ['Authority', i.name],
      ['24/7 desk', i.desk],
      ['Phone', isBlank(i.phone) ? null : el('span', {class: 'phone selectable'}, i.phone)],
      ['E-mail', isBlank(i.email) ? null : el('span', {class: 'selectable'}, i.email)],
    ]));
}

function acksSection(d) {
  const acks = (Array.isArray(d.acknowledged) ? d.acknowledged : []).slice()
    .sort((a, b) => timeValue(b.at) - timeValue(a.at));
  if (!acks.length) return section('Acknowledgements', el('p', {class: 'muted'}, 'Not acknowledged yet.'));
  return section(`Acknowledgements (${acks.length})`, table('Acknowledgements',
    ['When', 'Operator', 'Node', 'Of message', 'Receipt sent'],
    acks.map((a) => el('tr', {},
      el('td', {}, timeEl(a.at, {full: true})), el('td', {}, show(a.operator)), el('td', {}, show(a.node)),
      el('td', {class: 'mono small'}, show(a.message_id)), el('td', {class: 'mono small'}, show(a.receipt_id))))));
}

/** Newest first, one block per message (a table is too narrow beside the list); messages after the latest
 * acknowledgement are marked, since they are what CHANGED means. */
function historySection(d) {
  const history = (Array.isArray(d.history) ? d.history : []).slice()
    .sort((a, b) => timeValue(b.received_at || b.sent_at) - timeValue(a.received_at || a.sent_at));
  const acked = new Set((d.acknowledged || []).map((a) => a.message_id));
  const last = latestAck(d);
  const lastAckAt = last ? timeValue(last.at) : -Infinity;
  const items = history.map((h) => {
    const unseen = d.unacknowledged_change && timeValue(h.received_at || h.sent_at) > lastAckAt;
    return el('li', {class: `history-item${unseen ? ' not-acked' : ''}`},
      el('p', {class: 'history-head'},
        el('strong', {class: 'msg-type'}, show(h.msg_type)), ' ',
        h.status === 'Actual' ? null : el('span', {class: `label label-${String(h.status).toLowerCase()}`}, show(h.status).toUpperCase()), ' ',
        'sent ', timeEl(h.sent_at, {full: true}), ' · received ', timeEl(h.received_at, {full: true}),
        ' · from ', el('strong', {}, show(h.sender)),
        unseen ? el('span', {class: 'label label-changed'}, 'NOT ACKNOWLEDGED') : null,
        acked.has(h.message_id) ? el('span', {class: 'acked-here'}, ' · acknowledged') : null),
      el('p', {class: 'history-headline'}, show(h.headline)),
      el('p', {class: 'mono small muted'},
        `message ${show(h.message_id)} · alert ${show(h.alert_id)}`,
        isBlank(h.references) ? '' : ` · refers to ${show(h.references)}`));
  });
  return section(`History (${history.length} messages, newest first)`,
    items.length ? el('ol', {class: 'history'}, items) : el('p', {class: 'muted'}, 'No message.'));
}

/** Fields the server may add later are shown too, as text, rather than silently left out. */
const DETAIL_KEYS = new Set(['case_id', 'state', 'closed_by', 'status', 'mixed_status', 'tlp', 'urgency', 'severity',
  'headline', 'languages', 'issuer', 'first_sent_at', 'updated_at', 'last_seen', 'victims', 'acknowledged',
  'unacknowledged_change', 'last_message_id', 'description', 'instruction', 'translations', 'suspects', 'vehicles',
  'ransom', 'history', 'expires_at']);

function otherSection(d) {
  const extra = Object.entries(d).filter(([key]) => !DETAIL_KEYS.has(key));
  return extra.length ? section('Other fields', fields(extra)) : null;
}

// --- acknowledging ----------------------------------------------------------------------------------------------

function renderAckBar() {
  const button = $('#ack');
  const status = $('#ack-status');
  const d = state.detail;
  button.hidden = !canAck();
  const busy = Boolean(state.detailId && state.acking.has(state.detailId));
  button.disabled = !d || busy;
  button.textContent = busy ? 'Acknowledging…' : 'Acknowledge (a)';
  status.classList.remove('error');
  if (!d) {
    status.textContent = '';
    return;
  }
  const last = latestAck(d);
  const who = last ? [`${show(last.operator)}${last.node && state.me && last.node !== state.me.node ? ` (${last.node})` : ''} at `, timeEl(last.at)] : [];
  let parts;
  if (!last) parts = ['not acknowledged'];
  else if (d.unacknowledged_change) parts = ['changed since the acknowledgement by ', ...who];
  else parts = ['acknowledged by ', ...who];
  if (!canAck()) parts.push(' · viewer: read only');
  setChildren(status, ...parts);
  status.classList.toggle('acked', Boolean(last) && !d.unacknowledged_change);
}

async function acknowledge(caseId) {
  if (!caseId) return;
  if (!canAck()) {
    notify('Viewers cannot acknowledge.', 'error');
    return;
  }
  if (state.acking.has(caseId)) return;
  state.acking.add(caseId);
  renderAckBar();
  let body = null;
  let failure = null;
  try {
    body = await api(`${caseUrl(caseId)}/ack`, {method: 'POST'});
  } catch (err) {
    failure = err;
  }
  state.acking.delete(caseId);
  if (failure) {
    ackFailed(caseId, failure);
    return;
  }
  const detail = body && body.case;
  if (detail) {
    applyCase(toSummary(detail));
    if (state.detailId === caseId) showDetail(detail);
  }
  if (state.detailId === caseId) renderAckBar();
  removeFromBanner(caseId);
  const last = detail ? latestAck(detail) : null;
  const at = (last && parseTime(last.at)) || new Date();
  notify(`${caseId} acknowledged by ${state.me.user} at ${utcHM(at)}Z` +
    `${body && body.receipt_id ? `; receipt ${body.receipt_id} sent to the issuer` : ''}.`);
}

/** The refusal stays next to the button (and in a notice when the case is not the one on screen). */
function ackFailed(caseId, err) {
  notify(`${caseId} not acknowledged: ${err.message}`, 'error');
  if (state.detailId !== caseId) return;
  renderAckBar();
  const status = $('#ack-status');
  status.textContent = `Not acknowledged: ${err.message}`;
  status.classList.add('error');
}

// --- case changes (stream and acknowledgements) -----------------------------------------------------------------

/** An Actual, Immediate, open case nobody acknowledged: the only kind that rings. */
function isAlarming(c) {
  return c.state === 'open' && c.status === 'Actual' && c.urgency === 'Immediate'
    && (!Array.isArray(c.acknowledged) || c.acknowledged.length === 0);
}

/** One SUMMARY from the stream or an acknowledgement, whatever the filters: signals first, then the list. */
function applyCase(c, {fromStream = false} = {}) {
  if (!c || !c.case_id) return;
  const isNew = !state.known.has(c.case_id);
  state.known.add(c.case_id);
  if (fromStream && isNew && isAlarming(c) && !state.alerted.has(c.case_id)) raiseAlarm(c);
  if (state.pending) state.pending.push(c);
  const {was, now} = placeCase(c);
  if (was && !now && state.view === 'open' && c.state !== 'open') {
    notify(`${c.case_id} left the open cases, ${stateText(c)}: ${show(c.headline)}`);
  }
  updateBanner(c);
  renderList();
  if (state.detailId === c.case_id && fromStream) refreshDetailSoon(c.case_id);
}

// --- new-alert signals: banner, flash, announcement, sound -------------------------------------------------------

function raiseAlarm(c) {
  state.alerted.add(c.case_id);
  state.flashUntil.set(c.case_id, Date.now() + FLASH_MS);
  setTimeout(() => {
    state.flashUntil.delete(c.case_id);
    const row = state.rows.get(c.case_id);
    if (row) row.el.classList.remove('flash');
  }, FLASH_MS + 200);
  state.banner = [c, ...state.banner.filter((b) => b.case_id !== c.case_id)];
  renderBanner();
  announce(`New immediate alert: ${show(c.headline)}`);
  playAlarm();
}

function announce(text) {
  const region = $('#announcer');
  // Emptied first so that the same text twice is still announced twice.
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

/** Keeps the banner's copy of a case current; an acknowledged case leaves the banner. */
function updateBanner(c) {
  const index = state.banner.findIndex((b) => b.case_id === c.case_id);
  if (index < 0) return;
  if (Array.isArray(c.acknowledged) && c.acknowledged.length > 0) state.banner.splice(index, 1);
  else state.banner[index] = c;
  renderBanner();
}

function removeFromBanner(caseId) {
  state.banner = state.banner.filter((b) => b.case_id !== caseId);
  renderBanner();
}

function renderBanner() {
  const banner = $('#banner');
  const c = state.banner[0];
  banner.hidden = !c;
  if (!c) {
    banner.dataset.bannerCaseId = '';
    return;
  }
  banner.dataset.bannerCaseId = c.case_id; // not data-case-id: that selects rows and the detail
  $('#banner-text').textContent = `NEW IMMEDIATE ALERT: ${show(c.headline)}`;
  const seen = c.last_seen ? `last seen ${show(c.last_seen.place)}, ${show(c.last_seen.country)}` : 'last seen unknown';
  const closed = c.state !== 'open' ? ` · now ${stateText(c)}` : '';
  const more = state.banner.length > 1 ? ` · ${state.banner.length - 1} more new alert(s)` : '';
  $('#banner-sub').textContent = `${c.case_id} · ${seen} · from ${show(c.issuer && c.issuer.node)}${closed}${more}`;
}

function openBannerCase() {
  const c = state.banner[0];
  if (!c) return;
  if (state.rows.has(c.case_id)) select(c.case_id);
  openDetail(c.case_id);
}

function dismissBanner() {
  if (!state.banner.length) return;
  state.banner.shift();
  renderBanner();
}

/** Browsers keep audio off until a user gesture; the context is created early in case this origin already
 * has one (the login click), and resumed by the first key press or click otherwise. */
function audioContext() {
  if (state.sound.ctx) return state.sound.ctx;
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  try {
    state.sound.ctx = new Context();
  } catch (err) {
    return null;
  }
  state.sound.ctx.addEventListener('statechange', renderSound);
  return state.sound.ctx;
}

function audioRunning() {
  return Boolean(state.sound.ctx && state.sound.ctx.state === 'running');
}

function unlockAudio() {
  const ctx = audioContext();
  if (ctx && ctx.state !== 'running') ctx.resume().then(renderSound, () => {});
}

/** Capture-phase listener of every key press and pointer press: the first one unlocks audio. */
function onUserGesture() {
  // The very first gesture only unlocks: if it is a press of the sound button (or `s`), the sound stays on.
  state.sound.unlockOnly = state.sound.firstGesture && !audioRunning();
  state.sound.firstGesture = false;
  unlockAudio();
}

function renderSound() {
  const button = $('#sound');
  const on = state.sound.wanted && audioRunning();
  const locked = state.sound.wanted && !audioRunning();
  button.dataset.state = on ? 'on' : locked ? 'locked' : 'off';
  button.setAttribute('aria-pressed', String(state.sound.wanted));
  button.textContent = on ? 'sound on' : locked ? 'sound off (press any key)' : 'sound off';
}

/** The button (or `s`): a press that only unlocked audio leaves sound on, rather than toggling it off. */
function toggleSound() {
  if (state.sound.unlockOnly && state.sound.wanted) {
    state.sound.unlockOnly = false;
  } else {
    state.sound.wanted = !state.sound.wanted;
  }
  renderSound();
  if (state.sound.wanted) beep(0.05, 880, 0.15); // confirms the speakers work
}

function beep(delay, frequency, duration) {
  const ctx = state.sound.ctx;
  if (!ctx || ctx.state !== 'running') return;
  const at = ctx.currentTime + delay;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'sine';
  osc.frequency.value = frequency;
  // Ramps in and out: a tone switched on and off abruptly clicks.
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.4, at + 0.02);
  gain.gain.setValueAtTime(0.4, at + duration - 0.04);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + duration);
  osc.connect(gain).connect(ctx.destination);
  osc.start(at);
  osc.stop(at + duration + 0.05);
}

/** Three short tones, twice. Only isAlarming() cases (status Actual) come here: Exercise and Test never sound. */
function playAlarm() {
  if (!state.sound.wanted || !audioRunning()) return;
  for (const group of [0, 1.4]) {
    for (const offset of [0, 0.3, 0.6]) beep(group + offset, 880, 0.2);
  }
}

// --- notices ----------------------------------------------------------------------------------------------------

let noticeTimer = 0;
function notify(text, kind = 'info') {
  const notice = $('#notice');
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.classList.add('visible');
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => notice.classList.remove('visible'), kind === 'error' ? NOTICE_MS * 2 : NOTICE_MS);
}

// --- the event stream and the feed's health ---------------------------------------------------------------------

function parseData(event) {
  try {
    return JSON.parse(event.data);
  } catch (err) {
    return null;
  }
}

function connectStream() {
  clearTimeout(state.reconnectTimer);
  if (state.stream) state.stream.close();
  const stream = new EventSource('/api/events');
  state.stream = stream;
  stream.addEventListener('open', () => onStreamOpen(stream));
  stream.addEventListener('error', () => onStreamError(stream));
  stream.addEventListener('case', (event) => {
    state.lastStreamEventAt = Date.now();
    const c = parseData(event);
    if (c) applyCase(c, {fromStream: true});
  });
  stream.addEventListener('health', (event) => {
    state.lastStreamEventAt = Date.now();
    const health = parseData(event);
    if (health) {
      state.health = health;
      renderHealth();
    }
  });
}

/** After a gap, events may have been lost: the list is fetched again and unseen new alerts are announced. */
function onStreamOpen(stream) {
  if (stream !== state.stream) return;
  const reopened = state.everOpened;
  state.streamOpen = true;
  state.everOpened = true;
  state.lastStreamEventAt = Date.now();
  state.reconnectDelay = 2000;
  setConnected('open');
  renderHealth();
  // Cases that appeared while there was no stream (between the first look and the first open, too) ring now.
  syncOpenActual({alarm: true});
  if (reopened) loadCases();
}

/** EventSource retries by itself while readyState is CONNECTING; when CLOSED (an HTTP error) it has given up,
 * so we retry with a growing delay, after checking the session still holds. */
function onStreamError(stream) {
  if (stream !== state.stream) return;
  state.streamOpen = false;
  state.health = null;
  setConnected('reconnecting');
  renderHealth();
  if (stream.readyState === EventSource.CLOSED) scheduleReconnect();
}

function scheduleReconnect() {
  clearTimeout(state.reconnectTimer);
  const delay = state.reconnectDelay;
  state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30_000);
  state.reconnectTimer = setTimeout(async () => {
    try {
      await api('/api/me'); // a 401 leads to the login page
    } catch (err) {
      if (err.status === 401) return;
    }
    connectStream();
  }, delay);
}

/** A connection can die without an error (a proxy, a sleeping laptop): silence longer than the health
 * period means it did, and a new one is opened. */
function watchStream() {
  if (state.streamOpen && Date.now() - state.lastStreamEventAt > STREAM_SILENCE_MS) {
    state.streamOpen = false;
    state.health = null;
    setConnected('reconnecting');
    renderHealth();
    connectStream();
  }
}

function setConnected(value) {
  const node = $('#connected');
  node.dataset.state = value;
  node.textContent = `event stream ${value}`;
}

function healthView() {
  if (!state.streamOpen) {
    return {state: 'reconnecting', text: state.everOpened ? 'reconnecting' : 'connecting', since: null};
  }
  const h = state.health;
  if (!h) return {state: 'reconnecting', text: 'waiting for the feed', since: null};
  if (h.broker === 'unreachable') return {state: 'unreachable', text: 'broker unreachable', since: h.since};
  if (h.stale) return {state: 'stale', text: 'feed stale', since: h.last_message_at || h.since};
  return {state: 'live', text: 'live', since: null};
}

function renderHealth() {
  const view = healthView();
  const node = $('#health');
  node.dataset.state = view.state;
  const since = parseTime(view.since);
  // Written only when it changes: it is a live region, and health comes every few seconds.
  setTextIfChanged($('#health-text'), since ? `${view.text} since ${utcHM(since)}Z` : view.text);
  const h = state.health;
  const extra = [];
  if (since) extra.push(`${localHM(since)} local`);
  if (h && view.state !== 'reconnecting') {
    const last = parseTime(h.last_message_at);
    if (last && view.state === 'live') extra.push(`last message ${utcHM(last)}Z`);
    if (Number.isFinite(h.lag)) extra.push(`lag ${h.lag}`);
  }
  setTextIfChanged($('#health-extra'), extra.length ? ` ${extra.join(' · ')}` : ''); // the space keeps words apart
}

// --- keyboard ---------------------------------------------------------------------------------------------------

function isTyping(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit'].includes(target.type);
}

/** Enter and Space keep their own meaning on buttons, links and check boxes. */
function isControl(target) {
  return target instanceof Element && Boolean(target.closest('button, a[href], input, select, textarea, summary'));
}

const KEYS = {
  o: () => setView('open'),
  c: () => setView('closed'),
  '/': () => {
    const q = $('#filter-q');
    q.focus();
    q.select();
  },
  j: () => moveSelection(1),
  ArrowDown: () => moveSelection(1),
  k: () => moveSelection(-1),
  ArrowUp: () => moveSelection(-1),
  Home: () => selectAt(0),
  End: () => selectAt(state.cases.length - 1),
  u: () => selectNextUnacked(),
  a: () => acknowledge(state.detailId || state.selectedId),
  x: () => dismissBanner(),
  s: () => toggleSound(),
  '?': () => $('#help').showModal(),
};

function onKeyDown(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if ($('#help').open) return; // the dialog handles its own keys (Esc closes it)
  const target = event.target;
  if (event.key === 'Escape') {
    if (isTyping(target)) {
      target.blur();
      $('#cases').focus({preventScroll: true});
    } else {
      closeDetail();
    }
    return;
  }
  if (isTyping(target)) return;
  if (event.key === 'Enter') {
    if (isControl(target) || !state.selectedId) return;
    event.preventDefault();
    openDetail(state.selectedId);
    return;
  }
  const action = KEYS[event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

/** Left and right arrows move between the two view tabs (the ARIA tabs pattern). */
function onTabKey(event) {
  if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
  event.preventDefault();
  setView(state.view === 'open' ? 'closed' : 'open');
  $(`#view-${state.view}`).focus();
}

// --- start-up ---------------------------------------------------------------------------------------------------

function bindControls() {
  document.addEventListener('keydown', onUserGesture, true);
  document.addEventListener('pointerdown', onUserGesture, true);
  document.addEventListener('keydown', onKeyDown);
  $('#view-open').addEventListener('click', () => setView('open'));
  $('#view-closed').addEventListener('click', () => setView('closed'));
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener('keydown', onTabKey);
  $('#sound').addEventListener('click', toggleSound);
  $('#help-open').addEventListener('click', () => $('#help').showModal());
  $('#detail-close').addEventListener('click', closeDetail);
  $('#ack').addEventListener('click', () => acknowledge(state.detailId));
  $('#banner-open').addEventListener('click', openBannerCase);
  $('#banner-dismiss').addEventListener('click', dismissBanner);
  initFilters();
}

/** /api/me, retried while the server cannot be reached (a wall screen may start before the server does). */
async function loadMeUntilDone() {
  for (;;) {
    try {
      await loadMe();
      return true;
    } catch (err) {
      if (err.status === 401) return false; // on its way to the login page
      notify(`The session could not be read (${err.message}); trying again.`, 'error');
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }
}

async function start() {
  bindControls();
  restoreFilters();
  renderView();
  renderSound();
  renderHealth();
  unlockAudio(); // succeeds at once if this origin already had a gesture (the login click)
  if (!(await loadMeUntilDone())) return;
  renderAckBar();
  const seeded = syncOpenActual({alarm: false});
  loadCases();
  // The open cases are known before the stream opens, so that it can tell a new case from one already there.
  await seeded;
  connectStream();
  setInterval(tickRelative, RELATIVE_EVERY_MS);
  setInterval(watchStream, 5000);
  setInterval(() => {
    if (!document.querySelector('#filters :focus')) loadCases();
  }, RESYNC_EVERY_MS);
}

document.addEventListener('DOMContentLoaded', start);
