// The map's points (explorer/maps/packed.py's blob) as an element of their own. The map's element
// carries the selection and the hover card, which change on every lasso and hover; this one does
// not change, so the browser keeps it cached and the server resends a few hundred bytes, not every
// point. Decoded tables wait in a registry, by digest, for the map (map.js) to read.
const REGISTRY = globalThis.__vendiscopePoints
  || (globalThis.__vendiscopePoints = { tables: new Map(), waiting: new Map() });
const SCALE = 1, TEXTS = 2, HEADER = 48;

function unpack(raw) {
  const view = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
  const bytes = view.slice();  // an aligned copy: protobuf hands out views at any offset
  const buf = bytes.buffer, head = new DataView(buf);
  if (bytes.length < HEADER || String.fromCharCode(...bytes.subarray(0, 4)) !== "VSPT") {
    throw new Error("not a packed map");
  }
  const digest = new TextDecoder().decode(bytes.subarray(8, 40));
  const n = head.getUint32(40, true), flags = head.getUint32(44, true);
  let at = HEADER;
  const xs = new Float32Array(buf, at, n); at += 4 * n;
  const ys = new Float32Array(buf, at, n); at += 4 * n;
  let cs;
  if (flags & SCALE) { cs = new Float32Array(buf, at, n); at += 4 * n; }
  else { cs = new Uint16Array(buf, at, n); at += 2 * n + ((4 - ((2 * n) % 4)) % 4); }
  let texts = null;
  if (flags & TEXTS) {  // decoded one at a time, when the pointer rests on a point
    const offsets = new Uint32Array(buf, at, n + 1), utf8 = new Uint8Array(buf, at + 4 * (n + 1));
    const decoder = new TextDecoder();
    texts = { get: (i) => decoder.decode(utf8.subarray(offsets[i], offsets[i + 1])) };
  }
  return { digest, n, xs, ys, cs, texts };
}

function acquire(raw) {
  const view = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
  const digest = new TextDecoder().decode(view.subarray(8, 40));
  const entry = REGISTRY.tables.get(digest);
  if (entry) { entry.users++; return digest; }  // drawn again (a rerun, another page): not decoded again
  REGISTRY.tables.set(digest, { table: unpack(view), users: 1 });
  for (const wake of REGISTRY.waiting.get(digest) || []) wake();
  REGISTRY.waiting.delete(digest);
  return digest;
}

function release(digest) {
  const entry = REGISTRY.tables.get(digest);
  if (!entry) return;
  entry.users--;
  // kept a moment: a rerun that draws the same points again takes them back without decoding
  setTimeout(() => { if (entry.users <= 0 && REGISTRY.tables.get(digest) === entry) REGISTRY.tables.delete(digest); }, 5000);
}

export default function (component) {
  const { data, parentElement } = component;
  const state = parentElement.__vsPoints || (parentElement.__vsPoints = { digest: null, raw: null });
  if (data && data !== state.raw) {
    state.raw = data;
    const digest = acquire(data);
    if (state.digest) release(state.digest);
    state.digest = digest;
  }
  return () => {
    if (state.digest) release(state.digest);
    state.digest = null; state.raw = null;
  };
}
