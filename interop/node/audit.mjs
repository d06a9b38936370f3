// The evidence log of docs/PROTOCOL.md section 15, written from that section (and section 11 for the directory)
// and the vectors of tests/vectors/audit/ only: canonical JSON, leaf hashes, the RFC 9162 Merkle tree with its
// inclusion and consistency proofs, the directory versions accepted from an anchor, signed checkpoints, and the
// procedure that checks a case bundle. verify.mjs runs it (runAuditVectors) with its frame verifier.

import { createHash, verify as edVerify, sign as edSign } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

const sha256 = (b) => createHash('sha256').update(b).digest();
const hex = (b) => Buffer.from(b).toString('hex');
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

// A failure of the audit formats: `reason` is the code section 15 (or 11) names.
export class AuditFailure extends Error {
  constructor(reason, detail) { super(detail); this.reason = reason; }
}
const fail = (reason, detail) => { throw new AuditFailure(reason, detail); };

// Base64 that must be exactly that (no stray characters, canonical padding).
function unb64(text, what) {
  if (typeof text !== 'string') fail('malformed', `${what} is not base64 text`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) fail('malformed', `${what} is not base64`);
  return bytes;
}
function unhex(text, size, what) {
  if (typeof text !== 'string' || !/^([0-9a-f]{2})*$/.test(text) || (size !== undefined && text.length !== 2 * size)) {
    fail('malformed', `${what} is not ${size === undefined ? '' : size + ' bytes of '}lowercase hex`);
  }
  return Buffer.from(text, 'hex');
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON (section 15): no whitespace, members sorted by code point, integers only, strings with
// `"` `\` and the five short escapes, every other character outside U+0020..U+007E as \u plus four lowercase hex
// digits (characters beyond U+FFFF as their UTF-16 surrogate pair: a JS string already holds them so).

const SHORT_ESCAPES = new Map([[0x22, '\\"'], [0x5c, '\\\\'], [0x08, '\\b'], [0x09, '\\t'], [0x0a, '\\n'], [0x0c, '\\f'], [0x0d, '\\r']]);

function canonicalString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (SHORT_ESCAPES.has(c)) out += SHORT_ESCAPES.get(c);
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  return out + '"';
}

function byCodePoint(a, b) {
  const x = Array.from(a, (ch) => ch.codePointAt(0));
  const y = Array.from(b, (ch) => ch.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

export function canonicalJson(v) {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`canonical JSON holds integers only, not ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return canonicalString(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const names = Object.keys(v).sort(byCodePoint);
    return `{${names.map((k) => `${canonicalString(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  throw new Error(`not a JSON value: ${typeof v}`);
}

// ---------------------------------------------------------------------------------------------
// Entries: the leaf hash of section 15 from an entry's fields (key and value in base64).

const LEAF_CONTEXT = Buffer.from('op7 audit entry v1\0', 'ascii');

export function leafJson(entry) {
  const key = entry.key === null ? null : unb64(entry.key, 'key');
  const value = unb64(entry.value, 'value');
  return canonicalJson({
    index: entry.index, logged_at: entry.logged_at, topic: entry.topic, partition: entry.partition,
    offset: entry.offset, record_ms: entry.record_ms, key_sha256: key === null ? null : hex(sha256(key)),
    value_sha256: hex(sha256(value)), value_length: value.length, kind: entry.kind, outcome: entry.outcome,
    reason: entry.reason, detail: entry.detail, meta: entry.meta, previous: entry.previous,
  });
}
export const leafOf = (entry) => leafHash(Buffer.concat([LEAF_CONTEXT, Buffer.from(leafJson(entry), 'ascii')]));

// ---------------------------------------------------------------------------------------------
// RFC 9162 section 2.1, over leaf hashes.

const leafHash = (data) => sha256(Buffer.concat([Buffer.from([0]), data]));
const nodeHash = (left, right) => sha256(Buffer.concat([Buffer.from([1]), left, right]));
function split(n) { // the largest power of two smaller than n
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function mth(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0));
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// PATH(m, D[n]) of section 2.1.3.1, bottom up.
export function inclusionPath(m, leaves) {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k ? [...inclusionPath(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...inclusionPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

// PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of section 2.1.4.1.
export function consistencyProof(m, leaves) {
  const sub = (size, nodes, whole) => {
    if (size === nodes.length) return whole ? [] : [mth(nodes)];
    const k = split(nodes.length);
    return size <= k ? [...sub(size, nodes.slice(0, k), whole), mth(nodes.slice(k))]
      : [...sub(size - k, nodes.slice(k), false), mth(nodes.slice(0, k))];
  };
  return sub(m, leaves, true);
}

const isHash = (h) => Buffer.isBuffer(h) && h.length === 32;

// Section 2.1.3.2.
export function verifyInclusion(leaf, index, size, path, root) {
  if (!isHash(leaf) || !isHash(root) || !path.every(isHash)) return false;
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = BigInt(index); let sn = BigInt(size - 1); let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) || fn === sn) {
      r = nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else r = nodeHash(r, p);
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && r.equals(root);
}

// Section 2.1.4.2; between a tree and itself the proof is empty.
export function verifyConsistency(first, second, firstHash, secondHash, proof) {
  if (!isHash(firstHash) || !isHash(secondHash) || !proof.every(isHash)) return false;
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(second) && first >= 1 && first <= second)) return false;
  if (first === second) return proof.length === 0 && firstHash.equals(secondHash);
  if (proof.length === 0) return false;
  const path = (first & (first - 1)) === 0 ? [firstHash, ...proof] : proof;
  let fn = BigInt(first - 1); let sn = BigInt(second - 1);
  while (fn & 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0]; let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) || fn === sn) {
      fr = nodeHash(c, fr); sr = nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else sr = nodeHash(sr, c);
    fn >>= 1n; sn >>= 1n;
  }
  return fr.equals(firstHash) && sr.equals(secondHash) && sn === 0n;
}

// ---------------------------------------------------------------------------------------------
// The directory (section 11): an anchor, versions accepted from it in turn, the version in force at an instant
// and a key's validity then (section 15). Times are BigInt microseconds since the epoch.

const DIRECTORY_CONTEXT = Buffer.from('op7 directory v1\0', 'ascii');

function parseAnchor(data, { keyIdOf, publicFromRaw, NETWORK }) {
  if (data === null || typeof data !== 'object' || data.format !== 'op7-directory-anchor/1') fail('bad-anchor', 'not an op7 directory anchor');
  if (typeof data.network !== 'string' || !NETWORK.test(data.network)) fail('bad-anchor', `network ${data.network} is not a network name`);
  if (!Array.isArray(data.authorities) || data.authorities.length === 0) fail('bad-anchor', 'no authority keys');
  const authorities = data.authorities.map((a) => {
    const raw = unb64(a.public_key, 'an authority key');
    if (raw.length !== 32 || a.key_id !== hex(keyIdOf(raw))) fail('bad-anchor', `authority key ${a.key_id} is not under its own key id`);
    publicFromRaw(raw);
    return { key_id: a.key_id, public_key: raw, valid_from: 0n, valid_until: null, revoked_at: null };
  });
  if (new Set(authorities.map((a) => a.key_id)).size !== authorities.length) fail('bad-anchor', 'an authority key is listed twice');
  const { threshold, version } = data;
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > authorities.length) fail('bad-anchor', `threshold ${threshold}`);
  if (version !== undefined && (!Number.isInteger(version) || version < 1)) fail('bad-anchor', `version ${version}`);
  return { network: data.network, threshold, authorities, version: version === undefined ? null : BigInt(version) };
}

// Why key entry k cannot be used at t, or null (section 11).
function keyProblem(k, t) {
  if (k.revoked_at !== null && t >= k.revoked_at) return 'key-revoked';
  if (t < k.valid_from) return 'key-not-yet-valid';
  if (k.valid_until !== null && t > k.valid_until) return 'key-expired';
  return null;
}

function decodeVersion(data, { decodeSigned, decodeDirectoryBody, keyIdOf }) {
  let signed; let directory;
  try {
    signed = decodeSigned(data);
    directory = decodeDirectoryBody(signed.body);
  } catch (e) { fail('bad-directory', `not a signed directory version: ${e.message}`); }
  const ids = signed.signatures.map((s) => s.key_id);
  if (new Set(ids).size !== ids.length) fail('bad-directory', 'a signature list names a key twice');
  for (const k of [...directory.authorities, ...directory.nodes.flatMap((n) => n.signing_keys)]) {
    if (hex(keyIdOf(k.public_key)) !== k.key_id) fail('bad-directory', `key id ${k.key_id} is not that of its key`);
  }
  return { signed, directory };
}

// The key ids of `authorities` with a valid signature over the body at t, each key once, first entry only.
function signers(signed, authorities, t, publicFromRaw) {
  const untried = new Map(authorities.map((a) => [a.key_id, a]));
  const valid = [];
  for (const entry of signed.signatures) {
    const authority = untried.get(entry.key_id);
    untried.delete(entry.key_id);
    if (!authority || keyProblem(authority, t) !== null) continue;
    if (edVerify(null, Buffer.concat([DIRECTORY_CONTEXT, signed.body]), publicFromRaw(authority.public_key), entry.signature)) valid.push(entry.key_id);
  }
  return valid;
}

// Section 15, step 1: the versions of `records` (signed directory bytes) accepted from `anchor` in the order
// listed; the accepted versions, each with the instant it took force.
function acceptVersions(anchor, records, deps) {
  const versions = [];
  for (const data of records) {
    const { signed, directory } = decodeVersion(data, deps);
    const v = directory.version;
    const held = versions.find((x) => x.directory.version === v);
    if (held) {
      if (!held.signed.body.equals(signed.body)) fail('directory-fork', `another body under version ${v}`);
      continue;
    }
    const first = versions.length === 0;
    const last = versions.at(-1);
    if (first ? anchor.version !== null && v < anchor.version : v < last.directory.version) fail('directory-before-anchor', `version ${v} is older than the chain`);
    const next = first ? (anchor.version === null ? v : anchor.version + 1n) : last.directory.version + 1n;
    if (v > next) fail('directory-gap', `version ${v} offered, version ${next} must come first`);
    if (directory.network !== anchor.network) fail('directory-network', `version ${v} is for network ${directory.network}`);
    const old = first ? anchor : last.directory;
    const mayHaveSigned = new Set([...old.authorities, ...directory.authorities].map((a) => a.key_id));
    if (signed.signatures.length > mayHaveSigned.size) fail('directory-too-many-signatures', `${signed.signatures.length} signatures`);
    const t = directory.issued_at;
    const held1 = signers(signed, old.authorities, t, deps.publicFromRaw).length;
    if (held1 < old.threshold) fail('directory-signatures', `version ${v}: ${held1} of ${old.threshold} signatures of the held authorities`);
    const own = signers(signed, directory.authorities, t, deps.publicFromRaw).length;
    if (own < directory.threshold) fail('directory-new-signatures', `version ${v}: ${own} of ${directory.threshold} signatures of its own authorities`);
    const from = first || t > last.from ? t : last.from;
    versions.push({ signed, directory, from });
  }
  return versions;
}

// The version in force at t: the newest that took force by then, the first for an earlier instant.
function inForce(versions, t) {
  if (versions.length === 0) fail('no-directory', 'no directory version accepted');
  return [...versions].reverse().find((x) => x.from <= t) ?? versions[0];
}

// Section 15, "the directory in force": node's signing key key_id, valid at t; its entry.
function keyValidAt(versions, node, keyId, t) {
  const { directory } = inForce(versions, t);
  if (directory.expires_at !== null && t >= directory.expires_at) fail('directory-expired', `version ${directory.version} expired`);
  const entry = directory.nodes.find((n) => n.node_id === node);
  if (!entry) fail('unknown-sender', `${node} is not in directory version ${directory.version}`);
  const key = entry.signing_keys.find((k) => k.key_id === keyId);
  if (!key) fail('unknown-key', `${node} has no signing key ${keyId} in version ${directory.version}`);
  const problem = keyProblem(key, t);
  if (problem) fail(problem, `${node}'s key ${keyId} at ${t}`);
  const revocations = versions.flatMap((x) => x.directory.nodes.filter((n) => n.node_id === node))
    .flatMap((n) => n.signing_keys.filter((k) => k.key_id === keyId && k.revoked_at !== null));
  if (revocations.some((k) => k.revoked_at <= t)) fail('key-revoked', `${node}'s key ${keyId} is revoked by a version`);
  return key;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

const CHECKPOINT_CONTEXT = Buffer.from('op7 audit checkpoint v1\0', 'ascii');

function parseCheckpoint(text, isoToMicros) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { fail('bad-checkpoint', `not JSON: ${e.message}`); }
  if (doc === null || typeof doc !== 'object' || doc.format !== 'op7-audit-checkpoint/1') fail('bad-checkpoint', 'not an op7 checkpoint');
  const { network, auditor } = doc;
  if (network !== null && typeof network !== 'string') fail('bad-checkpoint', 'network');
  if (typeof auditor !== 'string') fail('bad-checkpoint', 'auditor');
  if (typeof doc.key_id !== 'string' || !/^[0-9a-f]{16}$/.test(doc.key_id)) fail('bad-checkpoint', 'key_id');
  if (!Number.isSafeInteger(doc.size) || doc.size < 0) fail('bad-checkpoint', 'size');
  let at; let root; let signature;
  try {
    at = isoToMicros(doc.at);
    root = unhex(doc.root, 32, 'root');
    signature = unb64(doc.signature, 'signature');
  } catch (e) { fail('bad-checkpoint', e.message); }
  const members = { ...doc };
  delete members.signature;
  const signedBytes = Buffer.concat([CHECKPOINT_CONTEXT, Buffer.from(canonicalJson(members), 'ascii')]);
  return { network, auditor, keyId: doc.key_id, size: doc.size, root, at, signature, signedBytes };
}

function verifyCheckpoint(checkpoint, anchor, versions, publicFromRaw) {
  if (checkpoint.network !== anchor.network) fail('wrong-network', `checkpoint of network ${checkpoint.network}`);
  const key = keyValidAt(versions, checkpoint.auditor, checkpoint.keyId, checkpoint.at);
  if (!edVerify(null, checkpoint.signedBytes, publicFromRaw(key.public_key), checkpoint.signature)) fail('bad-signature', 'the checkpoint signature does not verify');
  const node = inForce(versions, checkpoint.at).directory.nodes.find((n) => n.node_id === checkpoint.auditor);
  if (!node.roles.includes('Auditor')) fail('not-an-auditor', `${checkpoint.auditor} has roles ${node.roles.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// Case bundles: the procedure of section 15. Returns every failure as { where, index?, reason, detail }.

function verifyBundle(bundle, anchorJson, deps) {
  const failures = [];
  if (bundle.format !== 'op7-audit-bundle/1') return [{ where: 'bundle', reason: 'bad-bundle', detail: `format ${bundle.format}` }];
  let anchor; let versions; let checkpoint;
  try {
    anchor = parseAnchor(anchorJson, deps);
    versions = acceptVersions(anchor, bundle.directory.map((d, i) => unb64(d, `directory version #${i}`)), deps);
  } catch (e) {
    if (!(e instanceof AuditFailure)) throw e;
    return [{ where: anchor ? 'directory' : 'anchor', reason: e.reason, detail: e.message }];
  }
  try {
    checkpoint = parseCheckpoint(bundle.checkpoint, deps.isoToMicros);
    verifyCheckpoint(checkpoint, anchor, versions, deps.publicFromRaw);
  } catch (e) {
    if (!(e instanceof AuditFailure)) throw e;
    return [{ where: 'checkpoint', reason: e.reason, detail: e.message }];
  }
  for (const entry of bundle.entries) {
    const found = (reason, detail) => failures.push({ where: 'entry', index: entry.index, reason, detail });
    let leaf; let proof; let value;
    try {
      leaf = leafOf(entry);
      proof = entry.proof.map((h, i) => unhex(h, 32, `proof hash ${i}`));
      value = unb64(entry.value, 'value');
    } catch (e) {
      if (!(e instanceof AuditFailure)) throw e;
      found(e.reason, e.message);
      continue;
    }
    if (!verifyInclusion(leaf, entry.index, checkpoint.size, proof, checkpoint.root)) {
      found('not-included', `its leaf and proof do not give the root of the checkpoint of size ${checkpoint.size}`);
    }
    let r;
    try { r = verifyFrame(value, anchor, versions, deps); } catch (e) {
      if (!(e instanceof deps.Refusal || e instanceof AuditFailure)) throw e;
      found(e.reason, e.message);
      continue;
    }
    const meta = { ...deps.renderHeader(r.header), sealed: r.header.sealed !== null, sender: r.sender, key_id: r.keyId };
    if (!isDeepStrictEqual(meta, entry.meta)) found('meta-differs', 'the logged meta is not the verified header');
  }
  return failures;
}

// Section 15, "Frame": section 4.4 steps 1 and 2 with the directory versions accepted; the payload is not read.
function verifyFrame(frame, anchor, versions, { receive, publicFromRaw }) {
  const lookupKey = (sender, keyId) => {
    for (const { directory } of [...versions].reverse()) {
      const key = directory.nodes.find((n) => n.node_id === sender)?.signing_keys.find((k) => k.key_id === keyId);
      if (key) return publicFromRaw(key.public_key);
    }
    const newest = versions.at(-1).directory;
    if (!newest.nodes.some((n) => n.node_id === sender)) fail('unknown-sender', `${sender} is not in directory version ${newest.version}`);
    fail('unknown-key', `no version lists key ${keyId} of ${sender}`);
  };
  const maySend = (sender, t, type) => {
    const { directory } = inForce(versions, t);
    if (!directory.nodes.find((n) => n.node_id === sender).allowed_types.includes(type)) fail('type-not-allowed', `${sender} may not send ${type}`);
  };
  return receive(frame, {
    network: anchor.network, lookupKey, headerOnly: true, maySend,
    keyValidAt: (sender, keyId, t) => keyValidAt(versions, sender, keyId, t),
  });
}

// ---------------------------------------------------------------------------------------------
// The vectors of tests/vectors/audit/.

// A UTC instant (BigInt microseconds) as section 15 writes times: +00:00, a fraction only when not zero.
function offsetIso(us) {
  const ms = us / 1000n;
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  const micros = Number(us % 1_000_000n);
  return `${base}${micros ? '.' + String(micros).padStart(6, '0') : ''}+00:00`;
}

function checkEntries(v, { report }) {
  v.canonical_json.forEach((c, i) => {
    const got = canonicalJson(c.value);
    report(got === c.text, `audit/entries.json canonical JSON #${i + 1}`, got === c.text ? `${c.text.length} characters` : `got ${got}`);
  });
  const leaves = [];
  for (const [position, e] of v.entries.entries()) {
    const problems = [];
    const json = leafJson(e);
    if (json !== e.leaf_json) problems.push(`leaf JSON differs: ${json}`);
    const leaf = leafOf(e);
    if (hex(leaf) !== e.leaf) problems.push(`leaf hash ${hex(leaf)} != ${e.leaf}`);
    if (e.index !== position) problems.push(`index ${e.index} at position ${position}`);
    const previous = position === 0 ? Buffer.alloc(32) : leaves[position - 1];
    if (e.previous !== hex(previous)) problems.push('previous is not the leaf hash of the entry before');
    leaves.push(leaf);
    report(problems.length === 0, `audit/entries.json entry ${e.index}`, problems.join('; ') || `${e.kind} ${e.outcome}${e.reason ? ' ' + e.reason : ''}, leaf ${e.leaf.slice(0, 16)}...`);
  }
  const badRoots = v.roots.filter((r) => hex(mth(leaves.slice(0, r.size))) !== r.root).map((r) => r.size);
  const whole = v.expected.outcome === 'accept' && v.expected.size === leaves.length && v.expected.root === hex(mth(leaves));
  const rootsOk = badRoots.length === 0 && v.roots.length === leaves.length + 1 && whole;
  report(rootsOk, 'audit/entries.json roots', rootsOk ? `sizes 0..${leaves.length}, the log's root ${v.expected.root.slice(0, 16)}...`
    : `wrong at sizes ${badRoots}${whole ? '' : '; expected size or root differs'}`);
  return leaves;
}

// Every proof of the vector: ours equals it, it verifies, and it no longer does once a hash or the position changes.
function checkProofs(v, leaves, { report }) {
  const roots = new Map(v.roots.map((r) => [r.size, Buffer.from(r.root, 'hex')]));
  const tampered = (proof) => proof.map((h, i) => (i === 0 ? Buffer.concat([Buffer.from([h[0] ^ 1]), h.subarray(1)]) : h));
  const problems = [];
  for (const { index, size, proof: text } of v.inclusion) {
    const proof = text.map((h) => Buffer.from(h, 'hex'));
    const where = `leaf ${index} of ${size}`;
    if (!isDeepStrictEqual(inclusionPath(index, leaves.slice(0, size)).map(hex), text)) problems.push(`${where}: our path differs`);
    if (!verifyInclusion(leaves[index], index, size, proof, roots.get(size))) problems.push(`${where}: does not verify`);
    if (proof.length && verifyInclusion(leaves[index], index, size, tampered(proof), roots.get(size))) problems.push(`${where}: verifies altered`);
    if (size > 1 && verifyInclusion(leaves[index], (index + 1) % size, size, proof, roots.get(size))) problems.push(`${where}: verifies at another index`);
  }
  report(problems.length === 0, 'audit/entries.json inclusion proofs', problems.join('; ') || `${v.inclusion.length} proofs`);
  problems.length = 0;
  for (const { old_size: m, new_size: n, proof: text } of v.consistency) {
    const proof = text.map((h) => Buffer.from(h, 'hex'));
    const where = `${m} -> ${n}`;
    if (!isDeepStrictEqual(consistencyProof(m, leaves.slice(0, n)).map(hex), text)) problems.push(`${where}: our proof differs`);
    if (!verifyConsistency(m, n, roots.get(m), roots.get(n), proof)) problems.push(`${where}: does not verify`);
    if (proof.length && verifyConsistency(m, n, roots.get(m), roots.get(n), tampered(proof))) problems.push(`${where}: verifies altered`);
    if (m > 1 && m < n && verifyConsistency(m - 1, n, roots.get(m - 1), roots.get(n), proof)) problems.push(`${where}: verifies from size ${m - 1}`);
  }
  report(problems.length === 0, 'audit/entries.json consistency proofs', problems.join('; ') || `${v.consistency.length} proofs`);
}

function checkCheckpoint(v, entries, deps) {
  const { report, privateFromSeed, rawPublic, keyIdOf } = deps;
  const keyProblems = [];
  for (const k of v.keys) {
    const seed = sha256(Buffer.from('op7 test vector key ' + k.node, 'utf8'));
    if (hex(seed) !== k.seed) keyProblems.push(`${k.node}: seed is not SHA-256("op7 test vector key " + node)`);
    const raw = rawPublic(privateFromSeed(seed));
    if (hex(raw) !== k.public_key || hex(keyIdOf(raw)) !== k.key_id) keyProblems.push(`${k.node}: public key or key id`);
  }
  report(keyProblems.length === 0, 'audit/checkpoint.json keys', keyProblems.join('; ') || v.keys.map((k) => k.node).join(', '));
  const anchor = parseAnchor(v.anchor, deps);
  let versions;
  const chain = [];
  try {
    versions = acceptVersions(anchor, v.directory.map((d) => unb64(d, 'directory version')), deps);
    // the log's directory entries state what each version holds: our decoding must read the same
    const logged = entries.filter((e) => e.kind === 'directory').map((e) => e.meta);
    const read = versions.map(({ directory: d }) => ({ issued_at: offsetIso(d.issued_at), network: d.network, nodes: d.nodes.map((n) => n.node_id).sort(byCodePoint), version: Number(d.version) }));
    if (!isDeepStrictEqual(read, logged)) chain.push(`decoded ${JSON.stringify(read)} != the log's ${JSON.stringify(logged)}`);
  } catch (e) { chain.push(`${e.reason ?? ''} ${e.message}`); }
  report(chain.length === 0, 'audit/checkpoint.json directory', chain.join('; ') || `versions ${versions.map((x) => x.directory.version).join(', ')} accepted from the anchor`);
  if (!versions) return;
  const problems = [];
  try {
    const checkpoint = parseCheckpoint(v.checkpoint, deps.isoToMicros);
    if (hex(checkpoint.signedBytes) !== v.signed_hex) problems.push('signed bytes differ from signed_hex');
    verifyCheckpoint(checkpoint, anchor, versions, deps.publicFromRaw);
    const seed = Buffer.from(v.keys.find((k) => k.node === checkpoint.auditor).seed, 'hex');
    if (!edSign(null, checkpoint.signedBytes, privateFromSeed(seed)).equals(checkpoint.signature)) problems.push('re-signing gives another signature');
    const expected = v.expected;
    if (expected.outcome !== 'accept' || checkpoint.auditor !== expected.auditor || checkpoint.size !== expected.size || hex(checkpoint.root) !== expected.root) problems.push('checkpoint differs from expected');
    if (hex(mth(entries.slice(0, checkpoint.size).map(leafOf))) !== expected.root) problems.push('root is not that of the log of entries.json');
  } catch (e) {
    if (!(e instanceof AuditFailure)) throw e;
    problems.push(`refused: ${e.reason} (${e.message})`);
  }
  report(problems.length === 0, 'audit/checkpoint.json checkpoint', problems.join('; ') || `${v.expected.auditor} signed size ${v.expected.size}, root ${v.expected.root.slice(0, 16)}...`);
}

const failureKey = (f) => `${f.where}${f.index === undefined ? '' : ' ' + f.index}: ${f.reason}`;

function checkBundle(file, v, entries, deps) {
  let got;
  try { got = verifyBundle(v.bundle, v.anchor, deps); } catch (e) {
    deps.report(false, `audit/${file}`, `crash: ${e.stack}`);
    return;
  }
  const problems = [];
  if (v.expected.outcome === 'accept') {
    if (got.length) problems.push(`refused: ${got.map((f) => `${failureKey(f)} (${f.detail})`).join('; ')}`);
    if (!isDeepStrictEqual(v.bundle.entries.map((e) => e.index), v.expected.entries)) problems.push('entries differ from expected');
    // the bundle's entries are those of the log of entries.json
    for (const e of v.bundle.entries) {
      const fields = { ...e };
      delete fields.proof;
      const logged = { ...entries[e.index] };
      delete logged.leaf_json;
      delete logged.leaf;
      if (!isDeepStrictEqual(fields, logged)) problems.push(`entry ${e.index} is not entry ${e.index} of entries.json`);
    }
  } else {
    const want = v.expected.failures.map(failureKey).sort();
    const have = got.map(failureKey).sort();
    if (v.expected.outcome !== 'refuse' || !isDeepStrictEqual(want, have)) {
      problems.push(`expected ${want.join(', ') || 'no failure'}; found ${got.map((f) => `${failureKey(f)} (${f.detail})`).join('; ') || 'none'}`);
    }
  }
  const summary = v.expected.outcome === 'accept' ? `accepted: entries ${v.expected.entries.join(', ')}`
    : `refused: ${got.map((f) => `${failureKey(f)} (${f.detail})`).join('; ')}`;
  deps.report(problems.length === 0, `audit/${file}`, problems.join('; ') || summary);
}

// Runs every vector of tests/vectors/audit/; `deps` are verify.mjs's reporting, frame verifier and decoders.
export function runAuditVectors(dir, deps) {
  const entriesVector = readJson(join(dir, 'entries.json'));
  const leaves = checkEntries(entriesVector, deps);
  checkProofs(entriesVector, leaves, deps);
  checkCheckpoint(readJson(join(dir, 'checkpoint.json')), entriesVector.entries, deps);
  const invalid = readdirSync(dir).filter((f) => f.startsWith('bundle-invalid-') && f.endsWith('.json')).sort();
  for (const file of ['bundle-valid.json', ...invalid]) checkBundle(file, readJson(join(dir, file)), entriesVector.entries, deps);
}
