// The console: reads the deployment's figures with an admin or auditor
// token, from the same API routes the reports are built from, and checks
// each cell's latest checkpoint in the browser with verify.js. The token
// is kept in this tab's sessionStorage only: never in a URL, a cookie or
// the page's address. Every text from the server is inserted as text.
import { CheckError, ed25519Supported, openCheckpoint } from './verify.js';

const cfg = JSON.parse(document.getElementById('config').textContent);
const STORE = 'domicile.console.token';
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  lang: cfg.lang,
  token: null,
  data: null, // {map, assessments, mechanisms, authority, open, transparency}
  checks: new Map(), // cell -> {ok, cp} or {ok: false, error}
  live: new Map(),
};

// t formats message key in the page's language: %s and %d in order, or
// %[n]s and %[n]d by position, as Go's fmt (the catalog is Go's).
function t(key, ...args) {
  const m = (cfg.messages[state.lang] || {})[key] ?? (cfg.messages.en || {})[key] ?? key;
  let next = 0;
  return m.replace(/%(?:\[(\d+)\])?([sdv%])/g, (all, pos, verb) => {
    if (verb === '%') return '%';
    const i = pos ? Number(pos) - 1 : next;
    next = i + 1;
    return String(args[i] ?? '');
  });
}

// word translates key + value when the catalog has it, else shows value.
function word(prefix, value) {
  const k = prefix + value;
  return k in (cfg.messages[state.lang] || {}) ? t(k) : String(value);
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function num(n) {
  return new Intl.NumberFormat(state.lang).format(n);
}

function bytes(n) {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return new Intl.NumberFormat(state.lang, { style: 'unit', unit: units[i], unitDisplay: 'short', maximumFractionDigits: i ? 1 : 0 }).format(v);
}

function fmtTime(s) {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(d) + ' UTC';
}

function fmtDay(s) {
  if (!s) return '';
  const d = new Date(s.length === 10 ? s + 'T00:00:00Z' : s);
  if (Number.isNaN(d.getTime())) return String(s);
  return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeZone: 'UTC' }).format(d);
}

function say(id, key, ...args) {
  state.live.set(id, [key, ...args]);
  document.getElementById(id).textContent = t(key, ...args);
}

class SignedOut extends Error {}

async function api(path) {
  const r = await fetch(path, {
    headers: { Authorization: 'Bearer ' + state.token },
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  if (r.status === 401) throw new SignedOut();
  const j = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new Error((j && j.detail) || 'HTTP ' + r.status);
    e.status = r.status;
    throw e;
  }
  return j;
}

// load reads every figure the console shows. A part the token may not
// read (403) or this process does not serve (503) is shown as such; a
// refused token signs out.
async function load() {
  const part = async (path) => {
    try {
      return { ok: true, v: await api(path) };
    } catch (e) {
      if (e instanceof SignedOut) throw e;
      return { ok: false, error: e.message };
    }
  };
  const assessments = [];
  for (const src of cfg.sources) {
    assessments.push({ source: src, r: await part('/v1/transfers/assessment?source=' + encodeURIComponent(src)) });
  }
  state.data = {
    map: await part('/v1/census'),
    assessments,
    mechanisms: await part('/v1/mechanisms'),
    authority: await part('/v1/authority/requests'),
    open: await part('/v1/requests/open'),
    transparency: await part('/v1/transparency?format=json&lang=' + encodeURIComponent(state.lang)),
  };
}

// CHECKPOINT_TRIES is how often a checkpoint that lacks a pinned
// witness's cosignature is asked for again, a second apart: a log serves
// a newer checkpoint without all its cosignatures only once it has waited
// for them longer than its witness wait (10 seconds by default), so a
// checkpoint caught in that moment is not reported as a failure.
const CHECKPOINT_TRIES = 15;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// verifyCheckpoints fetches each cell's latest checkpoint and verifies,
// with WebCrypto, the log's signature under the pinned log key and the
// cosignature of each pinned witness; the cells are checked side by side.
async function verifyCheckpoints() {
  state.checks.clear();
  const crypto = await ed25519Supported();
  await Promise.all(Object.entries(cfg.logs).map(async ([cell, pin]) => {
    if (!crypto) {
      state.checks.set(cell, { ok: false, error: t('console.cp.nocrypto') });
      return;
    }
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(pin.url + 'checkpoint', { cache: 'no-store', credentials: 'omit' });
        // 503: no checkpoint carries the witnesses' cosignatures yet.
        if (r.status === 503 && i + 1 < CHECKPOINT_TRIES) {
          await sleep(1000);
          continue;
        }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const cp = await openCheckpoint(await r.text(), pin.key, pin.witnesses);
        if (cp.missing.length === 0 || i + 1 >= CHECKPOINT_TRIES) {
          state.checks.set(cell, { ok: cp.missing.length === 0, cp });
          return;
        }
      } catch (e) {
        state.checks.set(cell, { ok: false, error: e instanceof CheckError ? e.args.join(', ') : e.message });
        return;
      }
      await sleep(1000);
    }
  }));
}

function fillBody(table, rows) {
  const tb = document.querySelector('#' + table + ' tbody');
  tb.replaceChildren(...rows);
}

function errorRow(cols, msg) {
  return el('tr', {}, el('td', { colspan: String(cols), class: 'failed', text: t('console.unavailable', msg) }));
}

// renderMap draws the data map: one column per jurisdiction, one box per
// cell with its operator, location, subjects and bytes; the table below
// says the same in rows.
function renderMap() {
  const fig = document.getElementById('map-figure');
  const m = state.data.map;
  if (!m.ok) {
    fig.replaceChildren();
    document.getElementById('map-lead').textContent = t('console.unavailable', m.error);
    fillBody('map-table', []);
    return;
  }
  const map = m.v;
  document.getElementById('map-lead').textContent =
    t('console.map.lead', num(map.subjects), bytes(map.bytes), map.jurisdictions.length) + (map.complete ? '' : ' ' + t('console.map.incomplete'));
  const colW = 400;
  const boxH = 96;
  const gap = 16;
  const maxCells = Math.max(1, ...map.jurisdictions.map((j) => j.cells.length));
  const width = Math.max(1, map.jurisdictions.length) * (colW + gap) + gap;
  const height = 56 + maxCells * (boxH + gap) + gap;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: String(width), height: String(height), role: 'img', 'aria-labelledby': 'map-svg-title map-svg-desc' });
  root.append(svg('title', { id: 'map-svg-title' }, t('console.map.h')));
  root.append(svg('desc', { id: 'map-svg-desc' }, t('console.map.desc')));
  map.jurisdictions.forEach((j, i) => {
    const x = gap + i * (colW + gap);
    const g = svg('g', { 'data-jurisdiction': j.jurisdiction, 'data-subjects': String(j.subjects), 'data-bytes': String(j.bytes) });
    g.append(svg('rect', { class: 'juris', x, y: 8, width: colW, height: height - 16, rx: 8 }));
    g.append(svg('text', { x: x + 12, y: 32, 'font-size': 16, 'font-weight': 700 }, word('console.jurisdiction.', j.jurisdiction) + ' (' + j.jurisdiction + ')'));
    g.append(svg('text', { x: x + 12, y: 50, 'font-size': 12, class: 'muted' }, t('console.map.total', num(j.subjects), bytes(j.bytes))));
    j.cells.forEach((c, k) => {
      const y = 60 + k * (boxH + gap);
      const cg = svg('g', { 'data-cell': c.cell, 'data-subjects': String(c.subjects), 'data-bytes': String(c.bytes), 'data-counted': String(c.counted) });
      cg.append(svg('rect', { class: 'cellbox' + (c.counted ? '' : ' uncounted'), x: x + 10, y, width: colW - 20, height: boxH, rx: 6 }));
      cg.append(svg('text', { x: x + 22, y: y + 22, 'font-size': 14, 'font-weight': 700 }, c.cell));
      cg.append(svg('text', { x: x + 22, y: y + 40, 'font-size': 12 }, c.operator));
      cg.append(svg('text', { x: x + 22, y: y + 57, 'font-size': 12, class: 'muted' }, c.location));
      cg.append(svg('text', { x: x + 22, y: y + 78, 'font-size': 13, 'font-weight': 600 },
        c.counted ? t('console.map.cell', num(c.subjects), bytes(c.bytes)) : t('console.map.uncounted')));
      g.append(cg);
    });
    root.append(g);
  });
  fig.replaceChildren(el('figure', {}, root));
  const rows = [];
  for (const j of map.jurisdictions) {
    for (const c of j.cells) {
      rows.push(el('tr', { 'data-cell': c.cell },
        el('td', { text: j.jurisdiction }), el('td', { text: c.cell }), el('td', { text: c.operator }), el('td', { text: c.location }),
        el('td', { class: 'num', text: c.counted ? num(c.subjects) : t('console.map.uncounted') }),
        el('td', { class: 'num', text: c.counted ? num(c.records) : '' }),
        el('td', { class: 'num', text: c.counted ? num(c.objects) : '' }),
        el('td', { class: 'num', text: c.counted ? bytes(c.bytes) : '' })));
    }
  }
  fillBody('map-table', rows);
}

// gauge draws one threshold: the year's count against it, with the
// headroom left and the day it is reached at the current rate.
function gauge(src, c, i) {
  const id = 'gauge-' + src + '-' + i;
  const frac = c.threshold > 0 ? Math.min(1, c.value / c.threshold) : 1;
  const W = 420;
  const H = 34;
  const cls = c.reached ? 'fill reached' : frac >= 0.8 ? 'fill near' : 'fill';
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: String(W), height: String(H), role: 'img', 'aria-labelledby': id + '-t' });
  s.append(svg('title', { id: id + '-t' }, t('console.gauge.label', num(c.value), num(c.threshold), Math.round(frac * 100))));
  s.append(svg('rect', { class: 'track', x: 0, y: 6, width: W, height: 20, rx: 4 }));
  s.append(svg('rect', { class: cls, x: 0, y: 6, width: Math.max(2, Math.round(W * frac)), height: 20, rx: 4 }));
  s.append(svg('line', { class: 'tick', x1: W - 1, x2: W - 1, y1: 2, y2: 32 }));
  const box = el('div', {
    class: 'gauge', 'data-source': src, 'data-fact': c.fact, 'data-threshold': String(c.threshold), 'data-value': String(c.value),
    'data-headroom': String(c.headroom), 'data-date': c.date || '', 'data-reached': String(c.reached),
  });
  box.append(el('h3', { text: t('console.gauge.h', word('console.fact.', c.fact), num(c.threshold)) }));
  box.append(s);
  box.append(el('p', { text: t('console.gauge.value', num(c.value), num(c.threshold)) }));
  let when;
  if (c.reached) when = t('console.gauge.reached');
  else if (c.date) when = t('console.gauge.date', num(c.headroom), fmtDay(c.date), c.per_day.toFixed(1));
  else if (c.value === 0) when = t('console.gauge.zero', num(c.headroom));
  else when = t('console.gauge.notyear', num(c.headroom), c.per_day.toFixed(1));
  box.append(el('p', { class: c.reached ? 'overdue' : '', text: when }));
  if (c.what) box.append(el('p', { class: 'note', text: t('console.gauge.what', c.rule, c.what) }));
  return box;
}

function renderGauges() {
  const out = [];
  for (const a of state.data.assessments) {
    const h = el('h3', { text: t('console.thresholds.source', word('console.jurisdiction.', a.source), a.source) });
    out.push(h);
    if (!a.r.ok) {
      out.push(el('p', { text: t('console.unavailable', a.r.error) }));
      continue;
    }
    const v = a.r.v;
    out.push(el('p', { text: t('console.thresholds.counts', v.year, num(v.pi_individuals_ytd), num(v.sensitive_pi_individuals_ytd)) }));
    if (!v.crossings || v.crossings.length === 0) {
      out.push(el('p', { text: t('console.thresholds.none') }));
      continue;
    }
    v.crossings.forEach((c, i) => out.push(gauge(a.source, c, i)));
  }
  document.getElementById('gauges').replaceChildren(...out);
}

function renderMechanisms() {
  const m = state.data.mechanisms;
  if (!m.ok) {
    fillBody('mechanisms-table', [errorRow(6, m.error)]);
    return;
  }
  const ms = m.v.mechanisms || [];
  document.getElementById('mechanisms-none').hidden = ms.length > 0;
  fillBody('mechanisms-table', ms.map((x) => {
    const st = x.status || {};
    return el('tr', { 'data-mechanism': x.id },
      el('td', { text: x.id }), el('td', { text: word('console.mechkind.', x.kind) + ' (' + x.source + ')' }), el('td', { text: x.reference || '' }),
      el('td', { class: st.valid ? 'verified' : 'failed', text: st.valid ? t('console.mech.valid') : t('console.mech.invalid', (st.problems || []).join('; ')) }),
      el('td', { text: st.valid_until ? fmtDay(st.valid_until) + (st.reapply_from ? ' — ' + t('console.mech.reapply', fmtDay(st.reapply_from)) : '') : t('console.mech.noexpiry') }),
      el('td', { text: st.filing_due ? (x.filed ? t('console.mech.filed', fmtDay(x.filed)) : t('console.mech.filingdue', fmtDay(st.filing_due))) : t('console.mech.nofiling') }));
  }));
}

function renderAuthority() {
  const a = state.data.authority;
  const counts = document.getElementById('authority-states');
  if (!a.ok) {
    counts.replaceChildren();
    fillBody('authority-table', [errorRow(6, a.error)]);
    return;
  }
  const reqs = [...(a.v.requests || [])];
  const by = new Map();
  for (const r of reqs) by.set(r.status, (by.get(r.status) || 0) + 1);
  counts.replaceChildren(...(reqs.length === 0 ? [el('li', { text: t('console.authority.none') })] :
    [...by.entries()].sort().map(([s, n]) => el('li', { 'data-state': s, text: t('console.authority.count', word('console.astate.', s), n) }))));
  reqs.sort((x, y) => (x.status === y.status ? String(x.received).localeCompare(y.received) : x.status.localeCompare(y.status)));
  fillBody('authority-table', reqs.map((r) => el('tr', { 'data-request': r.id },
    el('td', { text: word('console.astate.', r.status) }), el('td', { text: r.id + ' — ' + r.reference }),
    el('td', { text: r.authority + ' (' + r.jurisdiction + (r.foreign ? ', ' + t('console.authority.foreign') : '') + ')' }),
    el('td', { text: r.cell }), el('td', { text: fmtTime(r.received) }),
    el('td', { text: r.defer_until ? t('console.authority.deferred', fmtDay(r.defer_until)) : t('console.authority.nodeferral') }))));
}

function renderCheckpoints() {
  const rows = [];
  for (const cell of Object.keys(cfg.logs)) {
    const c = state.checks.get(cell);
    if (!c) {
      rows.push(el('tr', { 'data-cell': cell, 'data-verified': 'pending' }, el('td', { text: cell }), el('td', { colspan: '4', text: t('console.cp.pending') })));
      continue;
    }
    if (!c.cp) {
      rows.push(el('tr', { 'data-cell': cell, 'data-verified': 'failed' }, el('td', { text: cell }), el('td', { colspan: '3', text: '' }),
        el('td', { class: 'failed', text: t('console.cp.failed', c.error) })));
      continue;
    }
    const cos = c.cp.cosigned.map((w) => t('console.cp.cosigned', w.name, fmtTime(w.time * 1000)));
    for (const w of c.cp.missing) cos.push(t('console.cp.missing', w.name));
    rows.push(el('tr', { 'data-cell': cell, 'data-verified': c.ok ? 'verified' : 'failed', 'data-size': String(c.cp.size) },
      el('td', { text: cell }), el('td', { class: 'num', text: num(c.cp.size) }), el('td', {}, el('code', { text: c.cp.rootBase64 })),
      el('td', { text: cos.length ? cos.join('; ') : t('console.cp.nowitness') }),
      el('td', { class: c.ok ? 'verified' : 'failed', text: c.ok ? t('console.cp.verified', c.cp.origin) : t('console.cp.failed', t('console.cp.missingwit')) })));
  }
  fillBody('checkpoints-table', rows);
}

function renderRights() {
  const o = state.data.open;
  const lead = document.getElementById('rights-lead');
  if (!o.ok) {
    lead.textContent = t('console.unavailable', o.error);
    fillBody('rights-table', []);
    return;
  }
  const reqs = o.v.requests || [];
  const overdue = reqs.filter((r) => r.overdue).length;
  lead.textContent = t('console.rights.lead', reqs.length, overdue) + (o.v.uncounted.length ? ' ' + t('console.rights.uncounted', o.v.uncounted.join(', ')) : '');
  fillBody('rights-table', reqs.map((r) => el('tr', { 'data-request': r.id, 'data-overdue': String(r.overdue) },
    el('td', { class: r.overdue ? 'overdue' : '', text: fmtTime(r.deadline) + (r.overdue ? ' — ' + t('console.rights.overdue') : '') }),
    el('td', {}, el('code', { text: r.id })), el('td', { text: word('console.rkind.', r.kind) }), el('td', { text: word('console.rstate.', r.state) }),
    el('td', { text: r.cell }), el('td', { text: fmtTime(r.received) }))));
}

function renderReports() {
  const tr = state.data.transparency;
  const lead = document.getElementById('reports-lead');
  const dl = document.getElementById('reports-figures');
  if (!tr.ok) {
    lead.textContent = t('console.unavailable', tr.error);
    dl.replaceChildren();
    return;
  }
  const r = tr.v;
  lead.textContent = t('console.reports.lead', fmtDay(r.period.from), fmtDay(r.period.to), fmtTime(r.generated));
  const tot = r.totals;
  const items = [
    ['console.fig.events', num(tot.events_in_period)],
    ['console.fig.operator', num(tot.operator_accesses)],
    ['console.fig.authority', num(tot.authority_accesses)],
    ['console.fig.transfers', num(tot.transfer_events)],
    ['console.fig.remote', num(tot.remote_reads)],
    ['console.fig.erasures', num(tot.erasures)],
    ['console.fig.withdrawn', num(tot.consents_withdrawn)],
    ['console.fig.requests', num((r.authority_totals || {}).received || 0)],
  ];
  if (r.ledger) items.push(['console.fig.ledger', r.ledger.digest]);
  for (const c of r.cells || []) items.push(['console.fig.checkpoint', t('console.fig.at', num(c.log.size)), c.cell]);
  dl.replaceChildren(...items.flatMap(([k, v, arg]) => [el('dt', { text: t(k, arg) }), el('dd', { text: v })]));
}

function render() {
  if (!state.data) return;
  renderMap();
  renderGauges();
  renderMechanisms();
  renderAuthority();
  renderCheckpoints();
  renderRights();
  renderReports();
}

function applyStatic() {
  document.documentElement.lang = state.lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  document.getElementById('lang').value = state.lang;
  for (const [id, [key, ...args]] of state.live) document.getElementById(id).textContent = t(key, ...args);
}

// openReport fetches the transparency report as HTML with the token and
// opens it from a blob, so that the token never rides in a URL.
async function openReport(lang) {
  try {
    const r = await fetch('/v1/transparency?format=html&lang=' + lang, {
      headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const url = URL.createObjectURL(await r.blob());
    const a = el('a', { href: url, download: 'transparency.' + lang + '.html' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    say('status', 'console.error', e.message);
  }
}

function showLogin(key) {
  state.token = null;
  state.data = null;
  sessionStorage.removeItem(STORE);
  document.getElementById('content').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('refresh').hidden = true;
  document.getElementById('login').hidden = false;
  say('status', key);
  document.getElementById('token').focus();
}

async function start() {
  document.getElementById('login').hidden = true;
  say('status', 'console.loading');
  try {
    await load();
  } catch (e) {
    if (e instanceof SignedOut) showLogin('console.badtoken');
    else say('status', 'console.error', e.message);
    return;
  }
  document.getElementById('content').hidden = false;
  document.getElementById('signout').hidden = false;
  document.getElementById('refresh').hidden = false;
  render();
  say('status', 'console.checking');
  await verifyCheckpoints();
  renderCheckpoints();
  const ok = [...state.checks.values()].filter((c) => c.ok).length;
  say('status', 'console.done', ok, state.checks.size);
}

async function switchLang(lang) {
  if (!cfg.langs.includes(lang) || lang === state.lang) return;
  state.lang = lang;
  const u = new URL(location.href);
  u.searchParams.set('lang', lang);
  history.replaceState(null, '', u.pathname + u.search);
  applyStatic();
  if (state.data) {
    try {
      // The report's own words come in the new language.
      state.data.transparency = { ok: true, v: await api('/v1/transparency?format=json&lang=' + encodeURIComponent(lang)) };
    } catch (e) {
      if (e instanceof SignedOut) return showLogin('console.badtoken');
      state.data.transparency = { ok: false, error: e.message };
    }
    render();
  }
}

function main() {
  document.getElementById('lang').addEventListener('change', (e) => switchLang(e.target.value));
  document.getElementById('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token');
    const tok = input.value.trim();
    input.value = '';
    if (!tok) return;
    state.token = tok;
    sessionStorage.setItem(STORE, tok);
    start();
  });
  document.getElementById('signout').addEventListener('click', () => showLogin('console.signedout'));
  document.getElementById('refresh').addEventListener('click', () => start());
  document.getElementById('report-en').addEventListener('click', () => openReport('en'));
  document.getElementById('report-zh').addEventListener('click', () => openReport('zh-CN'));
  applyStatic();
  state.token = sessionStorage.getItem(STORE);
  if (!state.token) {
    showLogin('console.signin');
    return;
  }
  start();
}

main();
