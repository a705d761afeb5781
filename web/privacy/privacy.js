// The privacy page: reads the subject's statement, consents and trail
// with the link's token, and checks each access against the cell's log
// with verify.js. Every text from the server is inserted as text.
import { CheckError, TileReader, checkEvent, ed25519Supported, openCheckpoint } from './verify.js';

const cfg = JSON.parse(document.getElementById('config').textContent);
const STORE = 'domicile.privacy';
const MAX_EVENT_PAGES = 10;
const CHECKPOINT_TRIES = 30;

const state = {
  lang: cfg.lang,
  creds: null,
  statement: null,
  consents: [],
  events: [],
  results: new Map(), // leaf index -> {ok, key, args} (absent: pending)
  check: null, // {cp} or {error}
  waiting: false,
  // live holds, per element id, the message key and arguments of a
  // status line, so a language switch translates it too.
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

// has reports whether the catalog has key.
function has(key) {
  return key in (cfg.messages[state.lang] || {});
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'lang' || k === 'class' || k === 'id' || k === 'type' || k === 'scope') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function fmtTime(s) {
  const d = typeof s === 'number' ? new Date(s * 1000) : new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeStyle: 'long' }).format(d);
}

// say sets the status line with id to message key, and keeps it for a
// language switch; an argument that is a function is called each time, so
// that words it translates follow the language too.
function say(id, key, ...args) {
  state.live.set(id, [key, ...args]);
  document.getElementById(id).textContent = tr(key, ...args);
}

function tr(key, ...args) {
  return t(key, ...args.map((a) => (typeof a === 'function' ? a() : a)));
}

function setStatus(key, ...args) {
  say('status', key, ...args);
}

// credentials reads the subject and token from the link's fragment, keeps
// them for this tab only, and removes the fragment from the address bar.
function credentials() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get('token') && h.get('subject')) {
    const c = { subject: h.get('subject'), token: h.get('token'), expires: h.get('expires') || '' };
    try {
      sessionStorage.setItem(STORE, JSON.stringify(c));
    } catch {
      // Storage refused: the page still works until it is reloaded.
    }
    history.replaceState(null, '', location.pathname + location.search);
    return c;
  }
  try {
    return JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    return null;
  }
}

class ExpiredError extends Error {}

async function api(method, path, body) {
  const opts = {
    method,
    headers: { Authorization: 'Bearer ' + state.creds.token },
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) throw new ExpiredError();
  const j = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((j && j.detail) || 'HTTP ' + r.status);
  return j;
}

function subjectPath(rest = '') {
  return '/v1/subjects/' + encodeURIComponent(state.creds.subject) + rest;
}

async function loadStatement() {
  state.statement = await api('GET', subjectPath('/statement?format=json&lang=' + encodeURIComponent(state.lang)));
}

async function loadConsents() {
  state.consents = (await api('GET', subjectPath('/consents'))).consents || [];
}

// loadEvents reads the whole trail (bounded), oldest first.
async function loadEvents() {
  const out = [];
  let cursor = '';
  for (let i = 0; i < MAX_EVENT_PAGES; i++) {
    const page = await api('GET', subjectPath('/events?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '')));
    out.push(...page.events);
    if (!page.next) break;
    cursor = page.next;
  }
  state.events = out;
}

function applyStatic() {
  document.documentElement.lang = state.lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  document.getElementById('lang').value = state.lang;
  for (const [id, msg] of state.live) document.getElementById(id).textContent = tr(...msg);
  const exp = state.creds && state.creds.expires;
  document.getElementById('expires').textContent = exp ? t('privacy.expires', fmtTime(exp)) : '';
}

function consentName(kind) {
  const k = 'privacy.consent.kind.' + kind;
  return has(k) ? t(k) : kind;
}

function roleName(role) {
  return has('role.' + role) ? t('role.' + role) : role;
}

function basisText(ev) {
  const b = ev.basis || '';
  let s = b;
  if (b.startsWith('service:')) {
    const p = b.slice('service:'.length);
    s = t('privacy.basis.purpose', has('purpose.' + p) ? t('purpose.' + p) : p);
  } else if (has('privacy.basis.' + b)) {
    s = t('privacy.basis.' + b);
  }
  return ev.reference ? t('privacy.basis.reference', s, ev.reference) : s;
}

function renderWhere() {
  const st = state.statement;
  const dl = document.getElementById('where-list');
  dl.replaceChildren();
  const rows = [
    ['privacy.where.cell', st.home.cell],
    ['privacy.where.operator', st.home.operator],
    ['privacy.where.location', st.home.location],
    ['privacy.where.jurisdiction', st.home.jurisdiction],
    ['privacy.where.custody', st.keys.holder],
  ];
  for (const [k, v] of rows) dl.append(el('dt', { text: t(k) }), el('dd', { text: v || '—' }));
  const ul = document.getElementById('holdings');
  ul.replaceChildren();
  for (const h of st.holdings) {
    const cats = (h.categories || []).map((c) => (has('category.' + c) ? t('category.' + c) : c)).join(t('privacy.list.sep'));
    ul.append(el('li', { text: t('privacy.holding', h.kind, h.count, cats) }));
  }
  if (!st.holdings.length) ul.append(el('li', { text: t('privacy.holdings.none') }));
  document.getElementById('keys-text').textContent = st.keys.text;
  const reach = document.getElementById('reach-list');
  reach.replaceChildren();
  for (const r of st.reach) {
    const li = el('li', {}, el('strong', { text: (has('who.' + r.who) ? t('who.' + r.who) : r.who) + ': ' }), r.text);
    if (r.rules && r.rules.length) {
      const rules = el('ul', { class: 'rules' });
      for (const rule of r.rules) rules.append(el('li', {}, el('code', { text: rule.id }), ' ' + rule.citation + ' — ' + rule.summary));
      li.append(rules);
    }
    reach.append(li);
  }
}

function proofCell(idx) {
  const r = state.results.get(idx);
  if (!r) return { state: 'pending', text: t('privacy.proof.pending') };
  if (r.ok) return { state: 'verified', text: t('privacy.proof.verified') };
  return { state: 'failed', text: t('privacy.proof.failed', t(r.key, ...(r.args || []))) };
}

function renderEvents() {
  const tbody = document.querySelector('#events tbody');
  tbody.replaceChildren();
  const evs = [...state.events].reverse();
  for (const item of evs) {
    let ev = {};
    try {
      ev = JSON.parse(item.committed);
    } catch {
      // Shown as empty; its check fails.
    }
    const p = proofCell(item.leaf_index);
    const what = el('td', {}, (has('action.' + ev.action) ? t('action.' + ev.action) : ev.action || '') + ' ', el('code', { text: ev.resource || '' }));
    const tr = el('tr', { 'data-proof': p.state, 'data-leaf-index': String(item.leaf_index) },
      el('td', { text: fmtTime(ev.time) }),
      el('td', { text: ev.jurisdiction ? t('privacy.who', roleName(ev.role), ev.jurisdiction) : roleName(ev.role) }),
      what,
      el('td', { text: basisText(ev) }),
      el('td', { class: 'outcome-' + ev.outcome, text: t('privacy.outcome.' + (ev.outcome === 'allowed' ? 'allowed' : 'denied')) + (ev.detail ? ' (' + ev.detail + ')' : '') }),
      el('td', { class: 'proof proof-' + p.state, text: p.text }),
    );
    tbody.append(tr);
  }
  document.getElementById('accesses-lead').textContent = t('privacy.accesses.lead', state.events.length, state.statement.home.cell);
}

function renderCheck() {
  const box = document.getElementById('check-text');
  box.replaceChildren();
  const pin = cfg.logs[state.statement.home.cell];
  if (!pin) {
    box.append(el('p', { text: t('privacy.fail.nokey', state.statement.home.cell) }));
    return;
  }
  if (state.waiting) box.append(el('p', { text: t('privacy.check.waiting') }));
  const c = state.check;
  if (c && c.error) {
    box.append(el('p', { class: 'bad', text: t('privacy.check.sigbad', state.statement.log.origin || state.statement.home.cell, pin.key, c.error) }));
  } else if (c && c.cp) {
    const cp = c.cp;
    box.append(el('p', { text: t('privacy.check.checkpoint', cp.origin, cp.size, cp.rootBase64, cp.key) }));
    const ul = el('ul');
    for (const w of cp.cosigned) ul.append(el('li', { text: t('privacy.check.cosigned', w.name, fmtTime(w.time), w.key) }));
    for (const w of cp.missing) ul.append(el('li', { class: 'bad', text: t('privacy.check.missing', w.name, w.key) }));
    if (!pin.witnesses.length) ul.append(el('li', { text: t('privacy.check.nowitness') }));
    box.append(ul);
  }
  const ok = [...state.results.values()].filter((r) => r.ok).length;
  box.append(el('p', { text: t('privacy.check.events', ok, state.events.length) }));
  box.append(el('p', { text: t('privacy.check.trust') }));
}

function renderTransfers() {
  const st = state.statement;
  const note = document.getElementById('transfers-note');
  const wrap = document.getElementById('transfers-wrap');
  const tbody = document.querySelector('#transfers-table tbody');
  tbody.replaceChildren();
  if (!st.transfers_reported) {
    note.textContent = t('privacy.transfers.unreported', st.transfer_events);
  } else {
    note.textContent = st.transfers.length ? '' : t('privacy.transfers.none');
  }
  wrap.hidden = st.transfers.length === 0;
  for (const x of st.transfers) {
    tbody.append(el('tr', {},
      el('td', { text: fmtTime(x.time) }), el('td', { text: x.destination }), el('td', { text: x.recipient }),
      el('td', { text: x.mechanism }), el('td', { text: x.reference || '—' }), el('td', { text: x.purpose || '—' })));
  }
  const remote = document.getElementById('remote-list');
  remote.replaceChildren();
  for (const r of st.remote_reads) remote.append(el('li', { text: fmtTime(r.event.time) + ' — ' + r.event.resource + ': ' + r.event.detail }));
  if (!st.remote_reads.length) remote.append(el('li', { text: t('privacy.none') }));
}

function renderConsents() {
  const ul = document.getElementById('consent-list');
  ul.replaceChildren();
  for (const c of state.consents) {
    const li = el('li', { 'data-consent': c.kind, 'data-granted': String(c.granted) },
      el('strong', { text: consentName(c.kind) + ': ' }),
      t(c.granted ? 'privacy.consent.granted' : 'privacy.consent.withdrawn', fmtTime(c.time), c.text_version));
    if (c.granted) {
      const b = el('button', { type: 'button', class: 'withdraw', text: t('privacy.consent.withdraw'), 'aria-label': t('privacy.consent.withdraw.label', consentName(c.kind)) });
      b.addEventListener('click', () => withdraw(c, b));
      li.append(' ', b);
    }
    ul.append(li);
  }
  if (!state.consents.length) ul.append(el('li', { text: t('privacy.consents.none') }));
}

function renderRights() {
  const st = state.statement;
  const ul = document.getElementById('rights-list');
  ul.replaceChildren();
  for (const r of st.rights) {
    ul.append(el('li', {}, el('strong', { text: r.name }), r.article ? ' (' + r.article + ')' : '', ': ' + r.how));
  }
  const routes = document.getElementById('routes');
  routes.replaceChildren();
  const p = subjectPath();
  for (const [route, key] of [
    ['GET ' + p + '/records', 'privacy.route.access'],
    ['PUT ' + p + '/records/{kind}/{id}', 'privacy.route.correct'],
    ['DELETE ' + p, 'privacy.route.erase'],
  ]) {
    routes.append(el('li', {}, el('code', { text: route }), ' — ' + t(key)));
  }
  const c = st.contact || {};
  document.getElementById('contact-text').textContent =
    c.entity || c.contact ? t('privacy.contact', c.entity || t('privacy.contact.entity-unset'), c.contact || t('privacy.contact.unset')) : t('privacy.contact.none');
  const notes = document.getElementById('notes');
  notes.replaceChildren();
  for (const n of st.notes || []) notes.append(el('li', { text: n }));
}

function render() {
  applyStatic();
  if (!state.statement) return;
  renderWhere();
  renderEvents();
  renderCheck();
  renderTransfers();
  renderConsents();
  renderRights();
  renderRequests();
  document.getElementById('content').hidden = false;
}

function updateRow(idx) {
  const tr = document.querySelector('#events tr[data-leaf-index="' + idx + '"]');
  if (!tr) return;
  const p = proofCell(idx);
  tr.dataset.proof = p.state;
  const td = tr.querySelector('td.proof');
  td.className = 'proof proof-' + p.state;
  td.textContent = p.text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// verifyAll checks every event of the trail: first a checkpoint that
// covers them all and carries every pinned witness's cosignature (the
// log signs within a second, the witnesses cosign within another), then
// each event against it.
async function verifyAll() {
  const cell = state.statement.home.cell;
  const pin = cfg.logs[cell];
  const failAll = (key, ...args) => {
    for (const item of state.events) state.results.set(item.leaf_index, { ok: false, key, args });
  };
  state.results.clear();
  state.check = null;
  if (!pin) {
    failAll('privacy.fail.nokey', cell);
    render();
    return;
  }
  if (!(await ed25519Supported())) {
    failAll('privacy.fail.crypto');
    state.check = { error: t('privacy.fail.crypto') };
    render();
    return;
  }
  const need = state.events.reduce((m, e) => Math.max(m, e.leaf_index + 1), 0);
  let cp = null;
  state.waiting = true;
  for (let i = 0; i < CHECKPOINT_TRIES; i++) {
    try {
      const r = await fetch(pin.url + 'checkpoint', { cache: 'no-store', credentials: 'omit' });
      if (!r.ok) throw new CheckError('privacy.fail.checkpoint', 'HTTP ' + r.status);
      cp = await openCheckpoint(await r.text(), pin.key, pin.witnesses);
    } catch (e) {
      state.waiting = false;
      state.check = { error: e instanceof CheckError ? e.args.join(', ') || t(e.key) : e.message };
      failAll('privacy.fail.checkpoint');
      render();
      return;
    }
    if (cp.size >= need && cp.missing.length === 0) break;
    renderCheck();
    await sleep(1000);
  }
  state.waiting = false;
  state.check = { cp };
  if (cp.missing.length) {
    failAll('privacy.fail.checkpoint');
    render();
    return;
  }
  const reader = new TileReader(pin.url, cp.size);
  for (const item of state.events) {
    let res;
    try {
      res = await checkEvent(item, cp, reader, state.statement.subject_ref);
    } catch (e) {
      res = { ok: false, key: 'privacy.fail.fetch', args: [e.message] };
    }
    state.results.set(item.leaf_index, res);
    updateRow(item.leaf_index);
  }
  renderCheck();
}

async function withdraw(c, button) {
  button.disabled = true;
  try {
    await api('PUT', subjectPath('/consents/' + encodeURIComponent(c.kind)), { text_version: c.text_version, granted: false });
    say('consent-status', 'privacy.consent.done', () => consentName(c.kind));
    await loadConsents();
    await refreshTrail();
  } catch (e) {
    fail(e);
    button.disabled = false;
  }
}

async function refreshTrail() {
  await loadEvents();
  render();
  await verifyAll();
  setStatus('privacy.done', [...state.results.values()].filter((r) => r.ok).length, state.events.length);
}

// fileRequest files a tracked rights request of the given kind for the
// subject (POST /v1/subjects/{id}/requests), which the service answers
// at once for a copy, an explanation and a deletion; the request, with
// its deadline, then shows in the list of the subject's requests.
async function fileRequest(kind) {
  return api('POST', subjectPath('/requests'), { kind });
}

// loadRequests reads the subject's rights requests, newest first.
async function loadRequests() {
  const all = [];
  let cursor = '';
  for (let i = 0; i < 100; i++) {
    const page = await api('GET', subjectPath('/requests?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '')));
    all.push(...(page.requests || []));
    if (!page.next) break;
    cursor = page.next;
  }
  all.sort((x, y) => String(y.received).localeCompare(String(x.received)));
  state.requests = all;
}

function renderRequests() {
  const reqs = state.requests || [];
  document.getElementById('requests-none').hidden = reqs.length > 0;
  document.getElementById('requests-table').hidden = reqs.length === 0;
  document.querySelector('#requests-table tbody').replaceChildren(...reqs.map((r) => el('tr', { 'data-kind': r.kind, 'data-state': r.state },
    el('td', { text: t('privacy.requests.kind.' + r.kind) + ' (' + r.id + ')' }),
    el('td', { text: t('privacy.requests.state.' + r.state) + (r.overdue ? ' — ' + t('privacy.requests.overdue') : '') }),
    el('td', { text: fmtTime(r.received) }),
    el('td', { text: fmtTime(r.deadline && r.deadline.due) }))));
}

async function refreshRequests() {
  try {
    await loadRequests();
    renderRequests();
  } catch (e) {
    fail(e);
  }
}

// download files a copy request and downloads its bundle: a ZIP of the
// records as JSON, the files, the trail with its proofs, consents,
// transfers and a manifest with the SHA-256 of every file.
async function download() {
  try {
    const req = await fileRequest('copy');
    if (!req.result || !req.result.bundle) throw new Error(req.reason || req.state);
    const r = await fetch(req.result.bundle, {
      headers: { Authorization: 'Bearer ' + state.creds.token },
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    if (r.status === 401) throw new ExpiredError();
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const blob = await r.blob();
    const m = /filename="([^"]+)"/.exec(r.headers.get('Content-Disposition') || '');
    const a = el('a', { href: URL.createObjectURL(blob), download: m ? m[1] : 'copy-' + req.id + '.zip' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    say('rights-status', 'privacy.right.copied', req.id, blob.size);
    await refreshRequests();
  } catch (e) {
    fail(e);
  }
}

// explain files an explanation request and lists, per category of the
// subject's data, the purposes that read it and the rules they rest on.
async function explain() {
  try {
    const req = await fileRequest('explanation');
    const items = (req.result && req.result.explanation) || [];
    document.getElementById('explanation').replaceChildren(...items.map((c) => el('li', { 'data-category': c.category, text: c.text })));
    say('rights-status', 'privacy.right.explained', req.id, items.length);
    await refreshRequests();
  } catch (e) {
    fail(e);
  }
}

// erase files a deletion request: the service erases the subject and
// answers with the receipt, which names what the erasure cannot reach.
async function erase() {
  try {
    const req = await fileRequest('deletion');
    const r = req.result && req.result.receipt;
    if (!r) throw new Error(req.reason || req.state);
    let msg = t('privacy.right.erased', r.cell, r.records_deleted, r.objects_deleted, (r.key_fingerprints || []).join(', '), r.log_index) +
      ' ' + t('privacy.right.receipt', r.id);
    const away = r.unreachable || [];
    if (away.length) msg += ' ' + t('privacy.right.unreachable', away.length);
    document.getElementById('rights-status').textContent = msg;
    sessionStorage.removeItem(STORE);
    for (const b of document.querySelectorAll('button, input')) if (b.id !== 'lang') b.disabled = true;
  } catch (e) {
    fail(e);
  }
}

function fail(e) {
  if (e instanceof ExpiredError) setStatus('privacy.expired');
  else setStatus('privacy.error', e.message);
}

async function switchLang(lang) {
  if (!cfg.langs.includes(lang) || lang === state.lang) return;
  state.lang = lang;
  const u = new URL(location.href);
  u.searchParams.set('lang', lang);
  history.replaceState(null, '', u.pathname + u.search);
  render();
  if (state.creds && state.statement) {
    try {
      await loadStatement(); // the statement's texts come in the new language
      render();
    } catch (e) {
      fail(e);
    }
  }
}

async function main() {
  document.getElementById('lang').addEventListener('change', (e) => switchLang(e.target.value));
  document.getElementById('download').addEventListener('click', download);
  document.getElementById('explain').addEventListener('click', explain);
  const confirm = document.getElementById('erase-confirm');
  const eraseButton = document.getElementById('erase');
  confirm.addEventListener('change', () => (eraseButton.disabled = !confirm.checked));
  eraseButton.addEventListener('click', erase);
  // A new link opened in the same tab changes only the fragment: start
  // over with its token.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).get('token')) {
      credentials();
      location.reload();
    }
  });
  state.creds = credentials();
  applyStatic();
  if (!state.creds) {
    setStatus('privacy.nolink');
    return;
  }
  setStatus('privacy.loading');
  try {
    // The trail is read last, so that the checkpoint the page waits for
    // covers the page's own reads too.
    await loadStatement();
    await loadConsents();
    await loadRequests();
    await loadEvents();
  } catch (e) {
    fail(e);
    return;
  }
  setStatus('privacy.loaded');
  render();
  await verifyAll();
  setStatus('privacy.done', [...state.results.values()].filter((r) => r.ok).length, state.events.length);
}

main();
