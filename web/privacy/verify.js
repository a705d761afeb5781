// Verification of a domicile cell log in the browser, with WebCrypto only:
// C2SP signed-note checkpoints (Ed25519) and tlog-cosignature/v1
// cosignatures, C2SP tlog-tiles, RFC 6962 (RFC 9162 section 2.1) inclusion
// proofs, and the leaf format of domicile's log (doc/log.md).
//
// Nothing here trusts the server: a checkpoint is accepted only under the
// keys the caller pins, and every hash is either recomputed or read from
// a tile and then chained up to the signed root.

const enc = new TextEncoder();

/** utf8 returns the UTF-8 bytes of s. */
export function utf8(s) {
  return enc.encode(s);
}

/** b64decode decodes standard base64 (with padding), strictly. */
export function b64decode(s) {
  if (typeof s !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error('malformed base64');
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64encode(out) !== s) throw new Error('non-canonical base64');
  return out;
}

/** b64encode encodes bytes as standard base64 with padding. */
export function b64encode(b) {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** equal reports whether two byte arrays are equal. */
export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** sha256 returns the SHA-256 of data. */
export async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/** leafHash is the RFC 6962 hash of a log entry: SHA-256(0x00 || entry). */
export function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0), entry));
}

/** nodeHash is the RFC 6962 interior hash: SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

/** hmacSHA256 returns HMAC-SHA256(key, msg). */
export async function hmacSHA256(key, msg) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, msg));
}

/** CheckError is a failed check; key names its message in the catalog. */
export class CheckError extends Error {
  constructor(key, ...args) {
    super(key + (args.length ? ': ' + args.join(', ') : ''));
    this.key = key;
    this.args = args;
  }
}

/** ed25519Supported reports whether this browser's WebCrypto has Ed25519. */
export async function ed25519Supported() {
  try {
    await crypto.subtle.importKey('raw', new Uint8Array(32), { name: 'Ed25519' }, false, ['verify']);
    return true;
  } catch {
    return false;
  }
}

async function ed25519Verify(pub, sig, msg) {
  const k = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, k, sig, msg);
}

/**
 * parseVerifierKey parses a signed-note verifier key
 * "<name>+<hex key ID>+<base64(alg || public key)>" of algorithm alg
 * (0x01 Ed25519 note signatures, 0x04 cosignature/v1), and checks that the
 * key ID is the first 4 bytes of SHA-256(name || "\n" || alg || key).
 */
export async function parseVerifierKey(vkey, alg) {
  // The name has no "+"; the base64 key may.
  const m = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(String(vkey));
  if (!m) throw new Error('malformed verifier key ' + vkey);
  const [, name, hex, b64] = m;
  const raw = b64decode(b64);
  if (raw.length !== 33 || raw[0] !== alg) throw new Error('verifier key ' + name + ' is not of algorithm ' + alg);
  const id = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
  const sum = await sha256(concat(utf8(name + '\n'), raw));
  if (!equal(sum.subarray(0, 4), id)) throw new Error('verifier key ' + name + ': key ID does not match the key');
  return { name, id, pub: raw.subarray(1), text: vkey };
}

/**
 * openCheckpoint verifies a signed checkpoint (C2SP tlog-checkpoint in a
 * signed note) under the pinned log key, and the cosignatures of the
 * pinned witnesses. It throws a CheckError if the note is malformed or the
 * log's signature is missing or wrong. It returns the checkpoint with the
 * witnesses that cosigned it (name, key, time in Unix seconds) and those
 * whose valid cosignature is missing.
 */
export async function openCheckpoint(note, logKey, witnessKeys) {
  const lk = await parseVerifierKey(logKey, 0x01);
  const wks = [];
  for (const k of witnessKeys) wks.push(await parseVerifierKey(k, 0x04));
  if (note.length > 1 << 16) throw new CheckError('privacy.fail.checkpoint', 'note too large');
  const sep = note.indexOf('\n\n');
  if (sep < 0 || !note.endsWith('\n')) throw new CheckError('privacy.fail.checkpoint', 'malformed note');
  const text = note.slice(0, sep + 1);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckError('privacy.fail.checkpoint', 'malformed checkpoint');
  const [origin, sizeText, rootText] = lines;
  if (origin !== lk.name) throw new CheckError('privacy.fail.checkpoint', 'origin ' + origin + ' is not the pinned log ' + lk.name);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw new CheckError('privacy.fail.checkpoint', 'malformed size');
  let root;
  try {
    root = b64decode(rootText);
  } catch {
    throw new CheckError('privacy.fail.checkpoint', 'malformed root hash');
  }
  if (root.length !== 32) throw new CheckError('privacy.fail.checkpoint', 'malformed root hash');
  const textBytes = utf8(text);
  const sigs = note.slice(sep + 2, -1).split('\n');
  if (sigs.length > 100) throw new CheckError('privacy.fail.checkpoint', 'too many signatures');
  let signed = false;
  const cosigned = new Map();
  for (const line of sigs) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new CheckError('privacy.fail.checkpoint', 'malformed signature line');
    let sig;
    try {
      sig = b64decode(m[2]);
    } catch {
      throw new CheckError('privacy.fail.checkpoint', 'malformed signature');
    }
    if (m[1] === lk.name && sig.length === 68 && equal(sig.subarray(0, 4), lk.id)) {
      if (!(await ed25519Verify(lk.pub, sig.subarray(4), textBytes))) {
        throw new CheckError('privacy.fail.checkpoint', 'the log signature does not verify');
      }
      signed = true;
      continue;
    }
    for (const wk of wks) {
      if (m[1] !== wk.name || sig.length !== 76 || !equal(sig.subarray(0, 4), wk.id)) continue;
      const ts = new DataView(sig.buffer, sig.byteOffset + 4, 8).getBigUint64(0);
      const msg = utf8('cosignature/v1\ntime ' + ts.toString() + '\n' + text);
      if (await ed25519Verify(wk.pub, sig.subarray(12), msg)) {
        cosigned.set(wk.text, { name: wk.name, key: wk.text, time: Number(ts) });
      }
    }
  }
  if (!signed) throw new CheckError('privacy.fail.checkpoint', 'no signature by the pinned log key');
  return {
    origin,
    size: Number(sizeText),
    root,
    rootBase64: rootText,
    key: lk.text,
    cosigned: wks.filter((w) => cosigned.has(w.text)).map((w) => cosigned.get(w.text)),
    missing: wks.filter((w) => !cosigned.has(w.text)).map((w) => ({ name: w.name, key: w.text })),
  };
}

/** tilePath is the C2SP tlog-tiles path of tile n of level at width w. */
export function tilePath(level, n, w) {
  // N in groups of three digits, all but the last prefixed with "x".
  const groups = [];
  for (let x = n; ; x = Math.floor(x / 1000)) {
    groups.unshift(String(x % 1000).padStart(3, '0'));
    if (x < 1000) break;
  }
  const s = groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
  return 'tile/' + level + '/' + s + (w < 256 ? '.p/' + w : '');
}

function isPow2(n) {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function largestPow2Below(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * TileReader reads the hashes of a tree of the given size from a log's
 * tiles (tile height 8) under base, such as "/log/cn-gz1/". Fetched tiles
 * are kept; each is checked to have the width the tree size implies.
 */
export class TileReader {
  constructor(base, size, fetchFn = (u) => fetch(u, { cache: 'no-store', credentials: 'omit' })) {
    this.base = base;
    this.size = size;
    this.fetchFn = fetchFn;
    this.tiles = new Map();
    this.memo = new Map();
  }

  /** tile returns the hashes of tile n of level (a Uint8Array of 32-byte hashes). */
  tile(level, n) {
    const count = Math.floor(this.size / 256 ** level);
    const w = Math.min(256, count - n * 256);
    if (w <= 0) return Promise.reject(new Error('tile beyond the tree'));
    const path = tilePath(level, n, w);
    if (!this.tiles.has(path)) {
      this.tiles.set(path, (async () => {
        const r = await this.fetchFn(this.base + path);
        if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
        const b = new Uint8Array(await r.arrayBuffer());
        if (b.length !== 32 * w) throw new Error(path + ': ' + b.length + ' bytes, want ' + 32 * w);
        return b;
      })());
    }
    return this.tiles.get(path);
  }

  /** leafHash returns the hash the log's level-0 tile holds for leaf i. */
  async leafHash(i) {
    const t = await this.tile(0, Math.floor(i / 256));
    const o = (i % 256) * 32;
    return t.slice(o, o + 32);
  }

  /** stored returns the hash of the complete subtree of height k at index i. */
  async stored(k, i) {
    const level = Math.floor(k / 8);
    const h = k % 8;
    const j = i * 2 ** h;
    const n = Math.floor(j / 256);
    const t = await this.tile(level, n);
    let hs = [];
    for (let x = 0; x < 2 ** h; x++) {
      const o = (j - n * 256 + x) * 32;
      hs.push(t.subarray(o, o + 32));
    }
    while (hs.length > 1) {
      const next = [];
      for (let x = 0; x < hs.length; x += 2) next.push(await nodeHash(hs[x], hs[x + 1]));
      hs = next;
    }
    return hs[0];
  }

  /** range returns the RFC 6962 Merkle tree hash of the leaves [lo, hi). */
  range(lo, hi) {
    const key = lo + '-' + hi;
    if (!this.memo.has(key)) {
      this.memo.set(key, (async () => {
        const n = hi - lo;
        if (isPow2(n) && lo % n === 0) return this.stored(Math.round(Math.log2(n)), lo / n);
        const k = largestPow2Below(n);
        return nodeHash(await this.range(lo, lo + k), await this.range(lo + k, hi));
      })());
    }
    return this.memo.get(key);
  }

  /** inclusionProof builds the RFC 6962 audit path of leaf index from the tiles. */
  async inclusionProof(index) {
    const path = [];
    const walk = async (lo, hi) => {
      if (hi - lo <= 1) return;
      const k = largestPow2Below(hi - lo);
      if (index < lo + k) {
        await walk(lo, lo + k);
        path.push(await this.range(lo + k, hi));
      } else {
        await walk(lo + k, hi);
        path.push(await this.range(lo, lo + k));
      }
    };
    await walk(0, this.size);
    return path;
  }
}

/**
 * verifyInclusion checks an RFC 6962 inclusion proof of the leaf hash at
 * index in a tree of size with the given root (RFC 9162 section 2.1.3.2).
 */
export async function verifyInclusion(proof, index, size, leaf, root) {
  if (index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

const leafRE = /^domicile\/(v1|v2) t=(0|[1-9][0-9]*) a=([a-z-]+) r=([a-z]+) o=(allowed|denied)(?: g=([a-z,-]+))? c=([A-Za-z0-9+/]{43}=)$/;

/** leafTags are the public tags a leaf may carry, in ascending order (package leaf's Tags). */
const leafTags = ['emergency', 'lawful-request-domestic', 'lawful-request-foreign', 'maintenance', 'remote', 'support', 'withdrawal'];

/** reasons are the justifications of an operator's or authority's access. */
const reasons = ['support', 'maintenance', 'lawful-request-domestic', 'lawful-request-foreign', 'emergency'];

/**
 * parseLeaf parses a log entry, or returns null: domicile/v1 without
 * tags, domicile/v2 with one or more known tags in ascending order.
 */
export function parseLeaf(s) {
  const m = leafRE.exec(s);
  if (!m) return null;
  const tags = m[6] === undefined ? [] : m[6].split(',');
  if ((m[1] === 'v1') !== (m[6] === undefined)) return null;
  for (let i = 0; i < tags.length; i++) {
    if (!leafTags.includes(tags[i]) || (i > 0 && tags[i - 1] >= tags[i])) return null;
  }
  let c;
  try {
    c = b64decode(m[7]);
  } catch {
    return null;
  }
  return { t: Number(m[2]), action: m[3], role: m[4], outcome: m[5], tags, commitment: c };
}

/**
 * publicTags returns the tags an event's leaf must carry, as the cell
 * writes them (domicile.Event.PublicTags): the reason of an operator's or
 * authority's access, "remote" for an allowed read from abroad,
 * "withdrawal" for a consent withdrawn; in ascending order.
 */
export function publicTags(ev) {
  const tags = [];
  if ((ev.role === 'operator' || ev.role === 'authority') && reasons.includes(ev.basis)) tags.push(ev.basis);
  const detail = typeof ev.detail === 'string' ? ev.detail : '';
  if (ev.outcome === 'allowed' && detail.startsWith('remote read from ')) tags.push('remote');
  if (ev.action === 'consent' && ev.outcome === 'allowed' && detail.startsWith('withdrawn:')) tags.push('withdrawal');
  return tags.sort();
}

/** minuteOf returns an RFC 3339 UTC time in Unix seconds, rounded down to the minute. */
export function minuteOf(rfc3339) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/.exec(rfc3339 || '');
  if (!m) return NaN;
  const s = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000;
  return s - (s % 60);
}

/**
 * checkEvent checks one event of a subject's trail, as the events route
 * gives it ({leaf_index, salt, committed, leaf}), against a verified
 * checkpoint, reading the log's tiles with reader. subjectRef, if given,
 * must be the subject the event names. It returns {ok: true, proof} or
 * {ok: false, key, args}: the catalog key of the reason.
 */
export async function checkEvent(item, cp, reader, subjectRef) {
  const fail = (key, ...args) => ({ ok: false, key, args });
  const i = item.leaf_index;
  if (!Number.isSafeInteger(i) || i < 0) return fail('privacy.fail.leaf-format');
  if (i >= cp.size) return fail('privacy.fail.unsigned');
  if (!item.salt || !item.committed) return fail('privacy.fail.erased');
  const leaf = parseLeaf(item.leaf);
  if (!leaf) return fail('privacy.fail.leaf-format');
  let salt;
  try {
    salt = b64decode(item.salt);
  } catch {
    return fail('privacy.fail.commitment');
  }
  const commitment = await hmacSHA256(salt, utf8(item.committed));
  if (salt.length !== 32 || !equal(commitment, leaf.commitment)) return fail('privacy.fail.commitment');
  let ev;
  try {
    ev = JSON.parse(item.committed);
  } catch {
    return fail('privacy.fail.commitment');
  }
  if (minuteOf(ev.time) !== leaf.t || ev.action !== leaf.action || ev.role !== leaf.role || ev.outcome !== leaf.outcome ||
    publicTags(ev).join(',') !== leaf.tags.join(',')) {
    return fail('privacy.fail.leaf-fields');
  }
  if (subjectRef && ev.subject !== subjectRef) return fail('privacy.fail.subject');
  const lh = await leafHash(utf8(item.leaf));
  let proof;
  try {
    if (!equal(await reader.leafHash(i), lh)) return fail('privacy.fail.tile');
    proof = await reader.inclusionProof(i);
  } catch (e) {
    return fail('privacy.fail.fetch', e.message);
  }
  if (!(await verifyInclusion(proof, i, cp.size, lh, cp.root))) return fail('privacy.fail.root');
  return { ok: true, proof };
}
