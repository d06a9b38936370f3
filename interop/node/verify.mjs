// Independent op7 frame verifier and decoder (the audit formats of section 15 in audit.mjs), written from docs/PROTOCOL.md, the
// schemas in schemas/*.avsc and the JSON test vectors only (no op7 Python code).
//
//   cd interop/node && npm ci && node verify.mjs [-v]
//
// Prints one PASS/FAIL line per checked item and ends with "N passed, M failed".

import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import avro from 'avsc';
import { runAuditVectors } from './audit.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCHEMA_DIR = resolve(HERE, '../../schemas');
const VECTOR_DIR = resolve(HERE, '../../tests/vectors');
const VERBOSE = process.argv.includes('-v');

// ---------------------------------------------------------------------------------------------
// Reporting

let passed = 0;
let failed = 0;
function report(ok, label, detail) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${label}${detail ? ' -- ' + detail : ''}`);
}

const sha256 = (b) => createHash('sha256').update(b).digest();
const hex = (b) => Buffer.from(b).toString('hex');
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

// ---------------------------------------------------------------------------------------------
// Schemas: collect every named type of every top-level schemas/*.avsc into one registry.
// A file holds one schema or a JSON array of schemas (which, read as Avro, is a union). Names
// are resolved across files by full name, so the order in which files are read does not matter.

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const NAMED = new Set(['record', 'error', 'enum', 'fixed']);

const nsOf = (full) => (full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : '');
function fullNameOf(name, ns) {
  if (name.includes('.')) return name;
  return ns ? `${ns}.${name}` : name;
}

const registry = new Map(); // full name -> { schema (raw JSON), file }
const topLevel = []; // { full, schema, file }

function collect(s, ns, file, isTop) {
  if (typeof s === 'string' || s === null) return;
  if (Array.isArray(s)) { s.forEach((x) => collect(x, ns, file, isTop)); return; }
  const t = s.type;
  if (NAMED.has(t)) {
    const full = fullNameOf(s.name, s.namespace ?? ns);
    if (registry.has(full)) throw new Error(`${file}: ${full} already defined in ${registry.get(full).file}`);
    registry.set(full, { schema: s, file });
    if (isTop) topLevel.push({ full, schema: s, file });
    if (t === 'record' || t === 'error') s.fields.forEach((f) => collect(f.type, nsOf(full), file, false));
  } else if (t === 'array') collect(s.items, ns, file, false);
  else if (t === 'map') collect(s.values, ns, file, false);
  else if (typeof t === 'object') collect(t, ns, file, false);
}

function resolveRef(name, ns) {
  const full = fullNameOf(name, ns);
  if (registry.has(full)) return full;
  if (!name.includes('.') && registry.has(name)) return name; // null-namespace fallback
  throw new Error(`unknown type name ${name} (namespace ${ns || '(none)'})`);
}

// The "full self-contained JSON" of a type (§5): every named type it references inlined at its
// first use (depth first, in field order), later uses by full name. Every name is written as a
// full name, so namespace attributes are dropped. Docs, defaults, logical types, op7.topic kept.
function selfContained(s, ns, seen) {
  if (typeof s === 'string') {
    if (PRIMITIVES.has(s)) return s;
    const full = resolveRef(s, ns);
    if (seen.has(full)) return full;
    return selfContained(registry.get(full).schema, nsOf(full), seen);
  }
  if (Array.isArray(s)) return s.map((x) => selfContained(x, ns, seen));
  const t = s.type;
  if (NAMED.has(t)) {
    const full = fullNameOf(s.name, s.namespace ?? ns);
    if (seen.has(full)) return full;
    seen.add(full);
    const out = {};
    for (const [k, v] of Object.entries(s)) {
      if (k === 'namespace') continue;
      if (k === 'name') out.name = full;
      else if (k === 'fields') {
        out.fields = v.map((f) => ({ ...f, type: selfContained(f.type, nsOf(full), seen) }));
      } else out[k] = v;
    }
    return out;
  }
  if (t === 'array') return { ...s, items: selfContained(s.items, ns, seen) };
  if (t === 'map') return { ...s, values: selfContained(s.values, ns, seen) };
  if (typeof t === 'string' && PRIMITIVES.has(t)) return { ...s };
  return selfContained(t, ns, seen); // {"type": <name or schema>}
}

// Parsing Canonical Form, per the Avro specification: [PRIMITIVES] [FULLNAMES] [STRIP] [ORDER]
// [STRINGS] [INTEGERS] [WHITESPACE]. Input is a self-contained schema (named types defined at
// first use); a named type seen again is written as its full name.
function pcf(s, ns = '', seen = new Set()) {
  const q = (x) => JSON.stringify(x);
  if (typeof s === 'string') {
    if (PRIMITIVES.has(s)) return q(s);
    return q(fullNameOf(s, ns));
  }
  if (Array.isArray(s)) return `[${s.map((x) => pcf(x, ns, seen)).join(',')}]`;
  const t = s.type;
  if (typeof t !== 'string') return pcf(t, ns, seen);
  if (PRIMITIVES.has(t)) return q(t); // logical types and other attributes dropped
  switch (t) {
    case 'record':
    case 'error': {
      const full = fullNameOf(s.name, s.namespace ?? ns);
      if (seen.has(full)) return q(full);
      seen.add(full);
      const fields = s.fields.map((f) => `{"name":${q(f.name)},"type":${pcf(f.type, nsOf(full), seen)}}`);
      return `{"name":${q(full)},"type":${q(t)},"fields":[${fields.join(',')}]}`;
    }
    case 'enum': {
      const full = fullNameOf(s.name, s.namespace ?? ns);
      if (seen.has(full)) return q(full);
      seen.add(full);
      return `{"name":${q(full)},"type":"enum","symbols":[${s.symbols.map(q).join(',')}]}`;
    }
    case 'fixed': {
      const full = fullNameOf(s.name, s.namespace ?? ns);
      if (seen.has(full)) return q(full);
      seen.add(full);
      return `{"name":${q(full)},"type":"fixed","size":${parseInt(String(s.size), 10)}}`;
    }
    case 'array': return `{"type":"array","items":${pcf(s.items, ns, seen)}}`;
    case 'map': return `{"type":"map","values":${pcf(s.values, ns, seen)}}`;
    default: return q(fullNameOf(t, ns)); // {"type": "some.Name"}
  }
}

// longs as BigInt, so that no long silently loses precision
const BigLong = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n)); return b; },
  fromJSON: (x) => BigInt(x),
  toJSON: (n) => Number(n),
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
});
// avsc consults its registry only for type *names*: {"type": "long", ...} objects would bypass the
// BigInt long, so primitive objects are given to avsc as plain names (avsc ignores logicalType
// unless told otherwise; the normaliser below reads logical types from our own copy of the JSON).
function primitivesAsNames(s) {
  if (Array.isArray(s)) return s.map(primitivesAsNames);
  if (s === null || typeof s !== 'object') return s;
  if (typeof s.type === 'string' && PRIMITIVES.has(s.type)) return s.type;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'fields') out.fields = v.map((f) => ({ ...f, type: primitivesAsNames(f.type) }));
    else if (k === 'items' || k === 'values' || k === 'type') out[k] = primitivesAsNames(v);
    else out[k] = v;
  }
  return out;
}
const avscType = (full) => avro.Type.forSchema(primitivesAsNames(full), { registry: { long: BigLong }, wrapUnions: false });

const schemaFiles = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.avsc')).sort();
for (const f of schemaFiles) collect(readJson(join(SCHEMA_DIR, f)), '', f, true);

const types = new Map(); // full name -> { full JSON, pcf, fingerprint, topic, reader, writer }
for (const { full, schema } of topLevel) {
  if (schema.type !== 'record') continue;
  if (full !== 'op7.Envelope' && schema['op7.topic'] === undefined) continue;
  const fullJson = selfContained(full, '', new Set());
  // compute the fingerprint from the full JSON, as a peer would (§5)
  const canonical = pcf(JSON.parse(JSON.stringify(fullJson)));
  types.set(full, {
    fullJson,
    canonical,
    fingerprint: hex(sha256(canonical)),
    topic: schema['op7.topic'],
    reader: avscType(fullJson),
    writer: avscType(JSON.parse(JSON.stringify(fullJson))), // a separate instance, for resolution
  });
}
const ENVELOPE = types.get('op7.Envelope');
// §3: a header carries no schema id. Each released op7.Envelope (schemas/released/<version>) is the
// current one without the fields appended since (`network` after release 1, `sequence` after release 2);
// a header is read with the schema that consumes exactly its bytes, and written with the oldest schema
// that holds every appended field it sets (the others are null).
const RELEASES = readdirSync(resolve(SCHEMA_DIR, 'released')).sort((a, b) => Number(a) - Number(b));
const ENVELOPE_RELEASES = RELEASES.map((version) => {
  const names = new Set(readJson(resolve(SCHEMA_DIR, 'released', version, 'envelope.avsc')).fields.map((f) => f.name));
  const fullJson = { ...ENVELOPE.fullJson, fields: ENVELOPE.fullJson.fields.filter((f) => names.has(f.name)) };
  const lacks = ENVELOPE.fullJson.fields.filter((f) => !names.has(f.name)).map((f) => f.name);
  return { lacks, reader: avscType(fullJson) };
});
function decodeHeader(bytes) {
  try { return ENVELOPE.reader.fromBuffer(bytes); } catch (first) {
    for (const release of ENVELOPE_RELEASES) {
      let env;
      try { env = release.reader.fromBuffer(bytes); } catch { continue; }
      const out = {};
      for (const f of ENVELOPE.fullJson.fields) out[f.name] = f.name in env ? env[f.name] : f.default;
      return out;
    }
    throw first;
  }
}
function encodeHeader(canon) {
  const oldest = ENVELOPE_RELEASES.find((release) => release.lacks.every((name) => canon[name] === null));
  return (oldest ? oldest.reader : ENVELOPE.writer).toBuffer(toAvsc('op7.Envelope', '', canon));
}
// §11: a directory body carries no schema id either: it is read with the current op7.directory.Directory or,
// failing that, with each released one, which lacks the fields appended since (`expires_at` after release 1).
const DIRECTORY_JSON = selfContained('op7.directory.Directory', '', new Set());
const DIRECTORY_READERS = [avscType(DIRECTORY_JSON), ...RELEASES.map((version) => {
  const released = readJson(resolve(SCHEMA_DIR, 'released', version, 'directory.avsc')).find((s) => s.name === 'Directory');
  const names = new Set(released.fields.map((f) => f.name));
  return avscType({ ...DIRECTORY_JSON, fields: DIRECTORY_JSON.fields.filter((f) => names.has(f.name)) });
})];
const SIGNED_DIRECTORY = avscType(selfContained('op7.directory.SignedDirectory', '', new Set()));
function decodeDirectoryBody(bytes) {
  let first;
  for (const reader of DIRECTORY_READERS) {
    let directory;
    try { directory = reader.fromBuffer(bytes); } catch (e) { first ??= e; continue; }
    return { ...directory, expires_at: directory.expires_at ?? null };
  }
  throw first;
}
const messageTypes = new Map([...types].filter(([n]) => n !== 'op7.Envelope'));
const writerByFingerprint = new Map([...messageTypes].map(([name, t]) => [t.fingerprint, { name, type: t.writer }]));

// ---------------------------------------------------------------------------------------------
// Value normalisation. Decoded Avro values and the vectors' "expected" JSON are both mapped to a
// canonical form by walking the (reader) schema: timestamp-micros -> "ts:<micros>", date ->
// "date:<days>", decimal -> "dec:<unscaled>/<scale>", fixed/bytes -> lowercase hex, long ->
// decimal string, enum -> symbol, union [null, X] -> null or X. Then deep comparison.

function schemaOf(s, ns) {
  // returns { s: schema object or primitive string, ns } with references resolved
  if (typeof s === 'string') {
    if (PRIMITIVES.has(s)) return { s, ns };
    const full = resolveRef(s, ns);
    return { s: registry.get(full).schema, ns: nsOf(full), full };
  }
  if (!Array.isArray(s) && typeof s.type === 'object') return schemaOf(s.type, ns);
  if (!Array.isArray(s) && typeof s.type === 'string' && !PRIMITIVES.has(s.type) && !NAMED.has(s.type) && s.type !== 'array' && s.type !== 'map') return schemaOf(s.type, ns);
  const full = !Array.isArray(s) && NAMED.has(s.type) ? fullNameOf(s.name, s.namespace ?? ns) : undefined;
  return { s, ns: full ? nsOf(full) : ns, full };
}

const typeName = (s) => (typeof s === 'string' ? s : Array.isArray(s) ? 'union' : s.type);
const MICROS_PER_DAY = 86_400_000_000n;

function microsToIso(us) {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const rest = Number(us - ms * 1000n);
  const base = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  const frac = (base.slice(20, 23) + String(rest).padStart(3, '0')).replace(/0+$/, '');
  return base.slice(0, 19) + (frac ? '.' + frac.padEnd(6, '0') : '') + 'Z';
}
function isoToMicros(str) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/.exec(str);
  if (!m) throw new Error(`not an ISO 8601 timestamp: ${str}`);
  let ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (m[8] !== 'Z') ms -= (m[8][0] === '-' ? -1 : 1) * (+m[8].slice(1, 3) * 60 + +m[8].slice(4, 6)) * 60000;
  return BigInt(ms) * 1000n + BigInt((m[7] || '').padEnd(6, '0'));
}
const daysToIso = (d) => new Date(d * 86_400_000).toISOString().slice(0, 10);
function isoToDays(str) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(str);
  if (!m) throw new Error(`not an ISO 8601 date: ${str}`);
  return Date.UTC(+m[1], +m[2] - 1, +m[3]) / 86_400_000;
}
function twosToBigInt(buf) {
  if (buf.length === 0) return 0n;
  let v = BigInt('0x' + hex(buf));
  if (buf[0] & 0x80) v -= 1n << BigInt(8 * buf.length);
  return v;
}
function bigIntToTwos(v) {
  // minimal-length two's complement, big-endian (as Java BigInteger.toByteArray / Python)
  let n = 1;
  while (!(v >= -(1n << BigInt(8 * n - 1)) && v < (1n << BigInt(8 * n - 1)))) n++;
  const u = v < 0n ? (1n << BigInt(8 * n)) + v : v;
  return Buffer.from(u.toString(16).padStart(2 * n, '0'), 'hex');
}
function decimalString(unscaled, scale) {
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const s = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return (neg ? '-' : '') + s;
}
function parseDecimal(x, scale) {
  const str = typeof x === 'number' ? String(x) : x;
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(str);
  if (!m) throw new Error(`not a decimal: ${x}`);
  const frac = m[3] || '';
  if (frac.length > scale) throw new Error(`decimal ${x} has more than ${scale} decimals`);
  const v = BigInt(m[2] + frac.padEnd(scale, '0'));
  return m[1] ? -v : v;
}

// mode 'decoded': v is an avsc value; mode 'expected': v is the vectors' JSON.
// Returns { canon, render } where render is the decoded value in the vectors' JSON style.
function normalise(schema, ns, v, mode, path) {
  const { s, ns: ns2 } = schemaOf(schema, ns);
  const t = typeName(s);
  const logical = typeof s === 'object' && !Array.isArray(s) ? s.logicalType : undefined;
  const fail = (msg) => { throw new Error(`${path || '/'}: ${msg}`); };
  if (t === 'union') {
    if (v === null && s.some((b) => typeName(schemaOf(b, ns2).s) === 'null')) return { canon: null, render: null };
    const errors = [];
    for (const b of s) {
      if (typeName(schemaOf(b, ns2).s) === 'null') continue;
      try { return normalise(b, ns2, v, mode, path); } catch (e) { errors.push(e.message); }
    }
    fail(`no union branch matches: ${errors.join('; ')}`);
  }
  switch (t) {
    case 'null': if (v !== null) fail('expected null'); return { canon: null, render: null };
    case 'boolean': if (typeof v !== 'boolean') fail('expected boolean'); return { canon: v, render: v };
    case 'int': {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) fail(`not an Avro int: ${v}`);
      if (logical === 'date') {
        return { canon: `date:${v}`, render: daysToIso(v) };
      }
      return { canon: v, render: v };
    }
    case 'long': {
      let n;
      if (mode === 'decoded') n = v;
      else if (logical === 'timestamp-micros' && typeof v === 'string') n = isoToMicros(v);
      else if (Number.isInteger(v) || (typeof v === 'string' && /^-?\d+$/.test(v))) n = BigInt(v);
      else fail(`not a long: ${v}`);
      if (typeof n !== 'bigint') fail(`not a long: ${v}`);
      if (logical === 'timestamp-micros') return { canon: `ts:${n}`, render: microsToIso(n) };
      return { canon: `long:${n}`, render: Number.isSafeInteger(Number(n)) ? Number(n) : String(n) };
    }
    case 'float':
    case 'double': if (typeof v !== 'number') fail('expected number'); return { canon: v, render: v };
    case 'string': if (typeof v !== 'string') fail('expected string'); return { canon: v, render: v };
    case 'bytes': {
      if (logical === 'decimal') {
        const scale = s.scale ?? 0;
        const unscaled = mode === 'decoded' ? twosToBigInt(v) : parseDecimal(v, scale);
        return { canon: `dec:${unscaled}/${scale}`, render: decimalString(unscaled, scale) };
      }
      // PROTOCOL.md section 9: Avro bytes are base64 in the vectors' JSON, fixed values are hex.
      const b = mode === 'decoded' ? Buffer.from(v).toString('base64') : String(v);
      return { canon: `b64:${b}`, render: b };
    }
    case 'fixed': {
      const h = mode === 'decoded' ? hex(v) : String(v).toLowerCase();
      if (h.length !== 2 * s.size || !/^[0-9a-f]*$/.test(h)) fail(`not ${s.size} bytes of hex`);
      return { canon: `hex:${h}`, render: h };
    }
    case 'enum': if (!s.symbols.includes(v)) fail(`not a symbol of ${s.name}: ${v}`); return { canon: v, render: v };
    case 'array': {
      if (!Array.isArray(v)) fail('expected array');
      const r = v.map((x, i) => normalise(s.items, ns2, x, mode, `${path}/${i}`));
      return { canon: r.map((x) => x.canon), render: r.map((x) => x.render) };
    }
    case 'map': {
      const canon = {}; const render = {};
      for (const [k, x] of Object.entries(v)) { const r = normalise(s.values, ns2, x, mode, `${path}/${k}`); canon[k] = r.canon; render[k] = r.render; }
      return { canon, render };
    }
    case 'record':
    case 'error': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('expected object');
      const names = s.fields.map((f) => f.name);
      const extra = Object.keys(v).filter((k) => !names.includes(k));
      if (extra.length) fail(`unexpected field(s) ${extra.join(', ')}`);
      const canon = {}; const render = {};
      for (const f of s.fields) {
        if (!(f.name in v)) fail(`missing field ${f.name}`);
        const r = normalise(f.type, ns2, v[f.name], mode, `${path}/${f.name}`);
        canon[f.name] = r.canon; render[f.name] = r.render;
      }
      return { canon, render };
    }
    default: fail(`unsupported type ${t}`);
  }
}
// Entry point: the vectors' JSON is first brought to avsc-like values (dates -> days).
function norm(schema, ns, v, mode, path = '') {
  return normalise(schema, ns, mode === 'expected' ? preExpected(schema, ns, v) : v, mode, path);
}

// Converts the vectors' JSON into avsc-like values (dates -> days, decimals stay strings, ...)
// recursively, so that one walker handles both sides.
function preExpected(schema, ns, v) {
  const { s, ns: ns2 } = schemaOf(schema, ns);
  const t = typeName(s);
  const logical = typeof s === 'object' && !Array.isArray(s) ? s.logicalType : undefined;
  if (t === 'union') {
    if (v === null) return null;
    for (const b of s) {
      if (typeName(schemaOf(b, ns2).s) === 'null') continue;
      try { const x = preExpected(b, ns2, v); normalise(b, ns2, x, 'expected', ''); return x; } catch { /* next */ }
    }
    return v;
  }
  if (t === 'int' && logical === 'date' && typeof v === 'string') return isoToDays(v);
  if (t === 'array' && Array.isArray(v)) return v.map((x) => preExpected(s.items, ns2, x));
  if ((t === 'record' || t === 'error') && v && typeof v === 'object') {
    const out = { ...v };
    for (const f of s.fields) if (f.name in v) out[f.name] = preExpected(f.type, ns2, v[f.name]);
    return out;
  }
  return v;
}

// Converts canonical values back to avsc values, to re-encode the expected message (§9).
function toAvsc(schema, ns, c) {
  const { s, ns: ns2 } = schemaOf(schema, ns);
  const t = typeName(s);
  if (t === 'union') {
    if (c === null) return null;
    for (const b of s) {
      if (typeName(schemaOf(b, ns2).s) === 'null') continue;
      return toAvsc(b, ns2, c);
    }
  }
  if (typeof c === 'string') {
    if (c.startsWith('ts:') && t === 'long') return BigInt(c.slice(3));
    if (c.startsWith('long:') && t === 'long') return BigInt(c.slice(5));
    if (c.startsWith('date:') && t === 'int') return Number(c.slice(5));
    if (c.startsWith('dec:') && t === 'bytes') return bigIntToTwos(BigInt(c.slice(4).split('/')[0]));
    if (c.startsWith('hex:') && (t === 'bytes' || t === 'fixed')) return Buffer.from(c.slice(4), 'hex');
    if (c.startsWith('b64:') && t === 'bytes') return Buffer.from(c.slice(4), 'base64');
    return c;
  }
  if (t === 'array') return c.map((x) => toAvsc(s.items, ns2, x));
  if (t === 'record' || t === 'error') {
    const out = {};
    for (const f of s.fields) out[f.name] = toAvsc(f.type, ns2, c[f.name]);
    return out;
  }
  return c;
}

function firstDifference(a, b, path = '') {
  if (isDeepStrictEqual(a, b)) return null;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference(a[k], b[k], `${path}/${k}`);
      if (d) return d;
    }
  }
  return `${path || '/'}: decoded ${JSON.stringify(a)} != expected ${JSON.stringify(b)}`;
}

// ---------------------------------------------------------------------------------------------
// Rules beyond Avro (§8): invalid-content. Also the header rules we apply (invalid-header).

const ISO3166 = new Set(('AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR '
  + 'BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET '
  + 'FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ '
  + 'IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML '
  + 'MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS '
  + 'PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL '
  + 'TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW').split(' '));
const ISO4217 = new Set(Intl.supportedValuesOf('currency')); // ICU's list of current ISO 4217 codes
const NODE_ID = /^[A-Z]{2}\.[A-Z0-9][A-Z0-9-]{0,15}$/;
const NETWORK = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;
const E164 = /^\+[0-9]{7,15}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const REASONS = ['bad-magic', 'bad-version', 'bad-scheme', 'truncated', 'trailing-bytes', 'too-large', 'bad-frame',
  'unknown-sender', 'unknown-key', 'bad-signature', 'issuer-mismatch', 'unknown-type', 'unknown-schema',
  'undecodable', 'invalid-header', 'invalid-content', 'inconsistent', 'wrong-network'];
const COUNTRY_FIELDS = new Set(['country', 'issuing_country', 'registration_country', 'destination_country']);

const isNodeId = (x) => NODE_ID.test(x) && ISO3166.has(x.slice(0, 2));
function isLanguageTag(x) {
  try { return Intl.getCanonicalLocales(x).length === 1; } catch { return false; }
}

// Walks a decoded value with its schema, calling visit(recordFullName, value, path) per record.
function visitRecords(schema, ns, v, visit, path = '') {
  const { s, ns: ns2, full } = schemaOf(schema, ns);
  const t = typeName(s);
  if (t === 'union') {
    if (v === null) return;
    for (const b of s) if (typeName(schemaOf(b, ns2).s) !== 'null') return visitRecords(b, ns2, v, visit, path);
  }
  if (t === 'array') v.forEach((x, i) => visitRecords(s.items, ns2, x, visit, `${path}/${i}`));
  if (t === 'record' || t === 'error') {
    visit(full, v, path || '/');
    for (const f of s.fields) visitRecords(f.type, ns2, v[f.name], visit, `${path}/${f.name}`);
  }
}

function contentProblems(typeNameFull, payload, now) {
  const problems = [];
  const p = (path, msg) => problems.push(`${path}: ${msg}`);
  const todayDays = Math.floor(now / 86_400_000);
  visitRecords(typeNameFull, '', payload, (rec, v, path) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) continue;
      if (COUNTRY_FIELDS.has(k) && typeof x === 'string' && !ISO3166.has(x)) p(`${path}/${k}`, `not an ISO 3166-1 alpha-2 code: ${x}`);
      if (k === 'nationalities') x.forEach((c, i) => { if (!ISO3166.has(c)) p(`${path}/${k}/${i}`, `not ISO 3166-1 alpha-2: ${c}`); });
      if (k === 'languages') x.forEach((l, i) => { if (!isLanguageTag(l)) p(`${path}/${k}/${i}`, `not a BCP 47 tag: ${l}`); });
      if ((k.endsWith('_id') || k === 'case_id') && typeof x === 'string' && !IDENTIFIER.test(x)) p(`${path}/${k}`, `not an identifier: ${x}`);
      if (k === 'references') x.forEach((r, i) => { if (!IDENTIFIER.test(r)) p(`${path}/${k}/${i}`, `not an identifier: ${r}`); });
      if (k === 'date_of_birth' && x > todayDays) p(`${path}/${k}`, 'date of birth in the future');
      if (k === 'message_sender' && !isNodeId(x)) p(`${path}/${k}`, `not a node id: ${x}`);
    }
    switch (rec) {
      case 'op7.Authority': if (!isNodeId(v.node)) p(`${path}/node`, `not a node id: ${v.node}`); break;
      case 'op7.Contact': if (!E164.test(v.phone)) p(`${path}/phone`, `not E.164: ${v.phone}`); break;
      case 'op7.PhoneNumber': if (!E164.test(v.number)) p(`${path}/number`, `not E.164: ${v.number}`); break;
      case 'op7.GeoPoint':
        if (!(v.latitude >= -90 && v.latitude <= 90)) p(`${path}/latitude`, `out of range: ${v.latitude}`);
        if (!(v.longitude >= -180 && v.longitude <= 180)) p(`${path}/longitude`, `out of range: ${v.longitude}`);
        break;
      case 'op7.Money': {
        const a = twosToBigInt(v.amount);
        if (a < 0n) p(`${path}/amount`, 'negative amount');
        if ((a < 0n ? -a : a) >= 10n ** 20n) p(`${path}/amount`, 'exceeds decimal precision 20');
        if (!ISO4217.has(v.currency)) p(`${path}/currency`, `not an ISO 4217 code: ${v.currency}`);
        break;
      }
      default:
    }
  });
  const v = payload;
  if (v.requesting_authority && v.requested_authority && v.requesting_authority.node === v.requested_authority.node) p('/', 'requesting and requested authority are the same');
  switch (typeNameFull) {
    case 'op7.alert.KidnappingAlert':
      if (v.msg_type === 'Alert' && v.victims.length === 0) p('/victims', 'an Alert names no victim');
      if (v.msg_type !== 'Alert' && v.references.length === 0) p('/references', `${v.msg_type} references no earlier alert`);
      if (v.expires_at !== null && v.expires_at <= v.sent_at) p('/expires_at', 'not after sent_at');
      break;
    case 'op7.mla.MutualLegalAssistanceRequest':
      if (v.deadline !== null && v.deadline <= v.sent_at) p('/deadline', 'not after sent_at');
      break;
    case 'op7.cooperation.CollaborationRequest':
      if (v.starts_on !== null && v.ends_on !== null && v.ends_on < v.starts_on) p('/ends_on', 'period reversed');
      break;
    case 'op7.report.NationalReport': {
      if (v.period_end < v.period_start) p('/period_end', 'period reversed');
      const f = v.figures;
      const outcomes = f.victims_released + f.victims_rescued + f.victims_escaped + f.victims_deceased + f.victims_still_held;
      if (outcomes > f.victims) p('/figures', `victim outcomes ${outcomes} exceed victims ${f.victims}`);
      // catalogue (§8 table): the reporting country is the issuer's
      if (v.country !== v.issuer.node.slice(0, 2)) p('/country', `${v.country} is not the issuer's country`);
      break;
    }
    // The catalogue (§8 table) states these too, though the "Rules beyond Avro" list does not:
    case 'op7.mla.MutualLegalAssistanceResponse':
      if (['Refused', 'NeedsClarification'].includes(v.outcome) && v.grounds === null) p('/grounds', `required when ${v.outcome}`);
      break;
    case 'op7.cooperation.CollaborationResponse':
      if (v.decision === 'AcceptedWithConditions' && v.conditions === null) p('/conditions', 'required when AcceptedWithConditions');
      break;
    case 'op7.proceeds.ProceedsRequest':
      if (['Freezing', 'Confiscation'].includes(v.measure) && v.court_order === null) p('/court_order', `required for ${v.measure}`);
      break;
    case 'op7.exchange.ErrorReport':
      if (!REASONS.includes(v.reason)) p('/reason', `not a §6 reason code: ${v.reason}`);
      break;
    default:
  }
  return problems;
}

function headerProblems(h) {
  const problems = [];
  if (!UUID7.test(h.message_id)) problems.push(`message_id is not a lowercase UUIDv7: ${h.message_id}`);
  if (h.in_reply_to !== null && !UUID.test(h.in_reply_to)) problems.push(`in_reply_to is not a UUID: ${h.in_reply_to}`);
  h.recipients.forEach((r) => { if (!isNodeId(r)) problems.push(`recipient is not a node id: ${r}`); });
  h.languages.forEach((l) => { if (!isLanguageTag(l)) problems.push(`not a BCP 47 tag: ${l}`); });
  if (h.case_id !== null && !IDENTIFIER.test(h.case_id)) problems.push(`case_id is not an identifier: ${h.case_id}`);
  if (h.network !== null && !NETWORK.test(h.network)) problems.push(`network is not a network name: ${h.network}`);
  if (h.sequence !== null && h.sequence < 1n) problems.push(`sequence is not a number from 1: ${h.sequence}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Keys and the trust store

const keysFile = readJson(join(VECTOR_DIR, 'keys.json'));
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const privateFromSeed = (seed) => createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
const publicFromRaw = (raw) => createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
const rawPublic = (key) => createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
const keyIdOf = (raw) => sha256(raw).subarray(0, 8);

const trustStore = new Map(); // node id -> Map(key id hex -> KeyObject)
const seeds = new Map(); // node id -> seed (for the re-encoding check only)
for (const k of keysFile.keys) {
  const raw = Buffer.from(k.public_key, 'hex');
  const seed = Buffer.from(k.seed, 'hex');
  const problems = [];
  if (!hex(sha256(Buffer.from('op7 test vector key ' + k.node, 'utf8'))).startsWith(k.seed)) problems.push('seed is not SHA-256("op7 test vector key " + node)');
  if (!rawPublic(privateFromSeed(seed)).equals(raw)) problems.push('public key does not match the seed');
  if (hex(keyIdOf(raw)) !== k.key_id) problems.push(`key id ${k.key_id} != SHA-256(public key)[0:8] = ${hex(keyIdOf(raw))}`);
  if (!NODE_ID.test(k.node)) problems.push('node id does not match the node id pattern');
  report(problems.length === 0, `keys.json ${k.node}${k.trusted ? '' : ' (untrusted)'}`, problems.join('; ') || `key id ${k.key_id}`);
  seeds.set(k.node, seed);
  if (k.trusted) {
    if (!trustStore.has(k.node)) trustStore.set(k.node, new Map());
    trustStore.get(k.node).set(hex(keyIdOf(raw)), publicFromRaw(raw));
  }
}

// ---------------------------------------------------------------------------------------------
// RFC 8032 vectors

const rfc = readJson(join(VECTOR_DIR, 'rfc8032-ed25519.json'));
rfc.vectors.forEach((v, i) => {
  const priv = privateFromSeed(Buffer.from(v.secret_key, 'hex'));
  const msg = Buffer.from(v.message, 'hex');
  const sig = Buffer.from(v.signature, 'hex');
  const pub = publicFromRaw(Buffer.from(v.public_key, 'hex'));
  const problems = [];
  if (hex(rawPublic(priv)) !== v.public_key) problems.push('derived public key differs');
  if (hex(edSign(null, msg, priv)) !== v.signature) problems.push('signature differs');
  if (!edVerify(null, msg, pub, sig)) problems.push('signature does not verify');
  const bad = Buffer.from(sig); bad[0] ^= 1;
  if (edVerify(null, msg, pub, bad)) problems.push('altered signature verifies');
  report(problems.length === 0, `rfc8032 test ${i + 1}`, problems.join('; ') || `message ${msg.length} bytes`);
});

// ---------------------------------------------------------------------------------------------
// Schemas: fingerprints, cross-checked with avsc's own canonical form

for (const [name, t] of types) {
  // avsc's own canonical form ("type.schema()"), from the unmodified full JSON
  const avscCanon = JSON.stringify(avro.Type.forSchema(t.fullJson, { wrapUnions: false }).schema());
  const same = avscCanon === t.canonical;
  report(same, `schema ${name}`, `${t.topic ? 'topic ' + t.topic + ', ' : ''}fingerprint ${t.fingerprint}${same ? ' (avsc canonical form agrees)' : '; avsc canonical form differs: ' + avscCanon}`);
  if (VERBOSE) console.log(`     PCF ${t.canonical}`);
}

// ---------------------------------------------------------------------------------------------
// The procedure of §4.2, scheme 1

class Refusal extends Error {
  constructor(reason, detail, step) { super(detail); this.reason = reason; this.step = step; }
}
const refuse = (reason, detail, step) => { throw new Refusal(reason, detail, step); };
const MAX_FRAME = 700_000;

// The trust store's key of a sender (§4.2 step 2).
function trustStoreKey(sender, keyId) {
  const keys = trustStore.get(sender);
  if (!keys) refuse('unknown-sender', `${sender} is not in the trust store`, 2);
  const key = keys.get(keyId);
  if (!key) refuse('unknown-key', `${sender} has no key ${keyId}`, 2);
  return key;
}

// Options: `network`, the receiver's; `lookupKey(sender, keyId)`, the key or a refusal (default: the trust
// store); for a case bundle (§15), `keyValidAt(sender, keyId, createdAt)` and `maySend(sender, createdAt, type)`
// by the directory version in force, and `headerOnly` (the payload, perhaps sealed, is not read).
function receive(frame, { now = Date.now(), network = null, lookupKey = trustStoreKey, keyValidAt = null, maySend = null, headerOnly = false } = {}) {
  // Step 1: the prefix and the lengths; nothing is decoded.
  const MAGIC = Buffer.from('OP7', 'ascii');
  if (!frame.subarray(0, 3).equals(MAGIC.subarray(0, Math.min(3, frame.length)))) refuse('bad-magic', `magic ${hex(frame.subarray(0, 3))}`, 1);
  if (frame.length < 6) refuse('truncated', `${frame.length} bytes`, 1);
  if (frame[3] !== 1) refuse('bad-version', `format version ${frame[3]}`, 1);
  if (frame[4] !== 1) refuse('bad-scheme', `signature scheme ${frame[4]}`, 1);
  if (frame.length > MAX_FRAME) refuse('too-large', `${frame.length} bytes`, 1);
  const n = frame[5];
  let pos = 6;
  const need = (k, what) => { if (pos + k > frame.length) refuse('truncated', `${what}: need ${k} bytes at offset ${pos}, ${frame.length - pos} present`, 1); };
  need(n, 'sender');
  const senderBytes = frame.subarray(pos, pos + n); pos += n;
  const sender = senderBytes.toString('latin1');
  if (n < 4 || n > 19 || !NODE_ID.test(sender)) refuse('bad-frame', `sender ${JSON.stringify(sender)} (n=${n}) is not a node id`, 1);
  need(8, 'key id');
  const keyId = frame.subarray(pos, pos + 8); pos += 8;
  need(4, 'header length');
  const h = frame.readUInt32BE(pos); pos += 4;
  need(h, 'header');
  const header = frame.subarray(pos, pos + h); pos += h;
  need(4, 'payload length');
  const p = frame.readUInt32BE(pos); pos += 4;
  need(p, 'payload');
  const payload = frame.subarray(pos, pos + p); pos += p;
  const signedPart = frame.subarray(0, pos);
  need(2, 'signature block length');
  const s = frame.readUInt16BE(pos); pos += 2;
  need(s, 'signature block');
  const sigBlock = frame.subarray(pos, pos + s); pos += s;
  if (pos !== frame.length) refuse('trailing-bytes', `${frame.length - pos} byte(s) after the signature block`, 1);

  // Step 2: the sender's key.
  const key = lookupKey(sender, hex(keyId));

  // Step 3: signature over the signed part exactly as received.
  if (s !== 64) refuse('bad-signature', `signature block of ${s} bytes`, 3);
  if (!edVerify(null, signedPart, key, sigBlock)) refuse('bad-signature', 'signature does not verify', 3);

  // Step 4: decode the header, then the payload.
  // A header that is not Avro of op7.Envelope is taken as `undecodable` (step 4 wording); the
  // document never says when `invalid-header` applies: we use it for header content rules.
  let env;
  try {
    env = decodeHeader(header);
    norm('op7.Envelope', '', env, 'decoded'); // also checks what avsc does not (int range)
  } catch (e) { refuse('undecodable', `header: ${e.message}`, 4); }
  const hp = headerProblems(env);
  if (hp.length) refuse('invalid-header', hp.join('; '), 4);
  // §15 (a bundle's frame): the key valid at created_at by the directory in force, before the network.
  if (keyValidAt) keyValidAt(sender, hex(keyId), env.created_at);
  // A receiver of a network (one with a directory) takes only frames that name it.
  if (network !== null && env.network !== network) refuse('wrong-network', `header names network ${env.network}, receiver is of ${network}`, 4);
  if (maySend) maySend(sender, env.created_at, env.message_type);
  if (headerOnly) return { sender, keyId: hex(keyId), header: env, parts: { header, payload, sigBlock, signedPart } };
  const reader = messageTypes.get(env.message_type);
  if (!reader) refuse('unknown-type', `message type ${env.message_type}`, 4);
  const fp = hex(env.schema_fingerprint);
  const writer = writerByFingerprint.get(fp);
  if (!writer) refuse('unknown-schema', `no writer schema with fingerprint ${fp}`, 4);
  if (writer.name !== env.message_type) refuse('unknown-schema', `fingerprint ${fp} is a schema of ${writer.name}, not ${env.message_type}`, 4);
  let msg;
  try {
    const resolver = reader.reader.createResolver(writer.type);
    msg = reader.reader.fromBuffer(payload, resolver);
    norm(env.message_type, '', msg, 'decoded'); // ints within 32 bits (avsc does not check on decode)
  } catch (e) { refuse('undecodable', `payload: ${e.message}`, 4); }
  const cp = contentProblems(env.message_type, msg, now);
  if (cp.length) refuse('invalid-content', cp.join('; '), 4);

  // Step 5: consistency.
  // (avsc records are instances of per-schema classes: compare plain data, not prototypes)
  const plain = (x) => JSON.stringify(x, (k, y) => (typeof y === 'bigint' ? String(y) : y));
  const differs = [];
  for (const f of ['case_id', 'status', 'handling', 'languages']) {
    if (f in msg && plain(msg[f]) !== plain(env[f])) differs.push(f);
  }
  // §3 also requires the header's legal_basis to equal the payload's (not listed in §4.2 step 5)
  if ('legal_basis' in msg && plain(msg.legal_basis) !== plain(env.legal_basis)) differs.push('legal_basis (§3)');
  if (differs.length) refuse('inconsistent', `header and payload differ in ${differs.join(', ')}`, 5);
  if (msg.issuer.node !== sender) refuse('issuer-mismatch', `issuer ${msg.issuer.node}, sender ${sender}`, 5);

  return { sender, keyId: hex(keyId), header: env, message: msg, parts: { header, payload, sigBlock, signedPart } };
}

// ---------------------------------------------------------------------------------------------
// Valid vectors

const validDir = join(VECTOR_DIR, 'valid');
for (const file of readdirSync(validDir).filter((f) => f.endsWith('.json')).sort()) {
  const v = readJson(join(validDir, file));
  const label = `valid/${file}`;
  const problems = [];
  const info = [];
  try {
    const frame = Buffer.from(v.frame_hex, 'hex');
    if (v.expected.outcome !== 'accept') problems.push(`expected.outcome is ${v.expected.outcome}`);
    let r;
    try { r = receive(frame); } catch (e) {
      if (e instanceof Refusal) throw new Error(`refused at step ${e.step}: ${e.reason} (${e.message})`);
      throw e;
    }
    // the vector's own fields
    if (hex(r.parts.header) !== v.header_hex) problems.push('header_hex is not the header of frame_hex');
    if (hex(r.parts.payload) !== v.payload_hex) problems.push('payload_hex is not the payload of frame_hex');
    if (hex(r.parts.sigBlock) !== v.signature_hex) problems.push('signature_hex is not the signature of frame_hex');
    if (r.sender !== v.sender || r.keyId !== v.key_id) problems.push('sender/key_id fields differ from the prefix');
    // envelope
    const expEnv = { ...v.expected.envelope };
    for (const k of ['sender', 'key_id']) {
      if (k in expEnv && expEnv[k] !== (k === 'sender' ? r.sender : r.keyId)) problems.push(`envelope.${k}: ${expEnv[k]} != prefix`);
      delete expEnv[k];
    }
    const dEnv = norm('op7.Envelope', '', r.header, 'decoded');
    const eEnv = norm('op7.Envelope', '', expEnv, 'expected');
    const d1 = firstDifference(dEnv.canon, eEnv.canon, '/envelope');
    if (d1) problems.push(d1);
    // payload
    const type = r.header.message_type;
    if (type !== v.description.match(/op7\.[\w.]+/)?.[0]) info.push(`description names another type than ${type}`);
    const dMsg = norm(type, '', r.message, 'decoded');
    const eMsg = norm(type, '', v.expected.message, 'expected');
    const d2 = firstDifference(dMsg.canon, eMsg.canon, '/message');
    if (d2) problems.push(d2);
    // representation: does our rendering reproduce the vector's JSON exactly?
    const rep1 = firstDifference(dEnv.render, expEnv, '/envelope');
    const rep2 = firstDifference(dMsg.render, v.expected.message, '/message');
    if (rep1 || rep2) info.push(`representation differs (semantically equal): ${rep1 || rep2}`);
    // fingerprint
    const fp = messageTypes.get(type).fingerprint;
    if (v.schema_fingerprint !== fp) problems.push(`schema_fingerprint ${v.schema_fingerprint} != PCF fingerprint ${fp}`);
    if (hex(r.header.schema_fingerprint) !== fp) problems.push('header.schema_fingerprint != PCF fingerprint');
    if (messageTypes.get(type).topic === undefined) problems.push('schema has no op7.topic');
    // encoder check (§9): rebuild the frame from the expected values and the key's seed
    const hdr = encodeHeader(eEnv.canon);
    const pay = messageTypes.get(type).writer.toBuffer(toAvsc(type, '', eMsg.canon));
    const senderB = Buffer.from(r.sender, 'ascii');
    const u32 = (x) => { const b = Buffer.alloc(4); b.writeUInt32BE(x); return b; };
    const signed = Buffer.concat([Buffer.from('OP7', 'ascii'), Buffer.from([1, 1, senderB.length]), senderB,
      Buffer.from(r.keyId, 'hex'), u32(hdr.length), hdr, u32(pay.length), pay]);
    const sig = edSign(null, signed, privateFromSeed(seeds.get(r.sender)));
    const rebuilt = Buffer.concat([signed, Buffer.from([0, 64]), sig]);
    if (hex(hdr) !== v.header_hex) problems.push('re-encoded header differs from header_hex');
    if (hex(pay) !== v.payload_hex) problems.push('re-encoded payload differs from payload_hex');
    if (hex(rebuilt) !== v.frame_hex) problems.push('re-encoded frame differs from frame_hex');
    // UUIDv7 timestamp vs created_at (informational: the document does not require equality)
    const uuidMs = parseInt(r.header.message_id.replace(/-/g, '').slice(0, 12), 16);
    if (BigInt(uuidMs) * 1000n !== r.header.created_at / 1000n * 1000n) info.push(`message_id time ${new Date(uuidMs).toISOString()} != created_at`);
    if (problems.length === 0) {
      info.unshift(`${type}, fingerprint ${fp.slice(0, 16)}..., decoded = expected, re-encoded frame identical`);
    }
  } catch (e) {
    problems.push(e.message);
  }
  report(problems.length === 0, label, [...problems, ...info].join('; '));
}

// ---------------------------------------------------------------------------------------------
// Invalid vectors

const invalidDir = join(VECTOR_DIR, 'invalid');
for (const file of readdirSync(invalidDir).filter((f) => f.endsWith('.json')).sort()) {
  const v = readJson(join(invalidDir, file));
  const label = `invalid/${file}`;
  const expected = v.expected.reason;
  let got; let detail;
  try {
    receive(Buffer.from(v.frame_hex, 'hex'));
    got = 'accept'; detail = 'accepted';
  } catch (e) {
    if (!(e instanceof Refusal)) { got = 'crash'; detail = e.stack; } else { got = e.reason; detail = `step ${e.step}: ${e.message}`; }
  }
  const ok = v.expected.outcome === 'refuse' && got === expected && REASONS.includes(expected);
  report(ok, label, `expected ${expected}, got ${got} (${detail})`);
}

// ---------------------------------------------------------------------------------------------
// Network vectors: a frame read by a receiver of the network `receiver_network`

const networkDir = join(VECTOR_DIR, 'network');
for (const file of readdirSync(networkDir).filter((f) => f.endsWith('.json')).sort()) {
  const v = readJson(join(networkDir, file));
  const label = `network/${file}`;
  const frame = Buffer.from(v.frame_hex, 'hex');
  let r; let got; let detail = '';
  try { r = receive(frame, { network: v.receiver_network }); got = 'accept'; } catch (e) {
    if (!(e instanceof Refusal)) { got = 'crash'; detail = e.stack; } else { got = e.reason; detail = `step ${e.step}: ${e.message}`; }
  }
  if (v.expected.outcome === 'refuse') {
    report(got === v.expected.reason && REASONS.includes(got), label, `expected ${v.expected.reason}, got ${got} (${detail})`);
    continue;
  }
  const problems = [];
  if (got !== 'accept') problems.push(`refused: ${got} (${detail})`);
  else {
    const expEnv = { ...v.expected.envelope };
    delete expEnv.sender; delete expEnv.key_id;
    const eEnv = norm('op7.Envelope', '', expEnv, 'expected');
    const d = firstDifference(norm('op7.Envelope', '', r.header, 'decoded').canon, eEnv.canon, '/envelope');
    if (d) problems.push(d);
    if (hex(encodeHeader(eEnv.canon)) !== v.header_hex) problems.push('re-encoded header differs from header_hex');
    try { receive(frame); } catch (e) { problems.push(`a receiver without a network refuses it: ${e.reason}`); }
  }
  report(problems.length === 0, label, problems.join('; ') || `header names ${r.header.network}, re-encoded header identical`);
}

// ---------------------------------------------------------------------------------------------
// The evidence log, checkpoints and case bundles (§15): audit.mjs, with this file's frame verifier

runAuditVectors(join(VECTOR_DIR, 'audit'), {
  report, receive, Refusal, isoToMicros, publicFromRaw, privateFromSeed, rawPublic, keyIdOf, NETWORK,
  renderHeader: (header) => norm('op7.Envelope', '', header, 'decoded').render,
  decodeSigned: (bytes) => SIGNED_DIRECTORY.fromBuffer(bytes),
  decodeDirectoryBody,
});

// ---------------------------------------------------------------------------------------------

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
