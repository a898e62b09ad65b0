// The map's points (explorer/maps/packed.py's blob) as an element of their own. The map's element
// carries the selection and the hover card, which change on every lasso and hover; this one does
// not change, so the browser keeps it cached and the server resends a few hundred bytes, not every
// point. Decoded tables wait in a registry, by digest, for the map (map.js) to read.
const REGISTRY = globalThis.__vendiscopePoints
  || (globalThis.__vendiscopePoints = { tables: new Map(), waiting: new Map() });
const SCALE = 1, TEXTS = 2, HEADER = 48, VERSION = 1;  // explorer/maps/packed.py

function asBytes(raw) {
  return raw instanceof Uint8Array ? raw : new Uint8Array(raw);
}

function digestOf(bytes) {
  return new TextDecoder().decode(bytes.subarray(8, 40));
}

function unpack(view) {
  if (view.length < HEADER || String.fromCharCode(...view.subarray(0, 4)) !== "VSPT") {
    throw new Error("not a packed map");
  }
  // typed arrays need 4-byte alignment; protobuf hands out views at any offset: copy only then
  const bytes = view.byteOffset % 4 === 0 ? view : view.slice();
  const buf = bytes.buffer, base = bytes.byteOffset, head = new DataView(buf, base, HEADER);
  if (head.getUint32(4, true) !== VERSION) throw new Error(`packed map version ${head.getUint32(4, true)}`);
  const n = head.getUint32(40, true), flags = head.getUint32(44, true);
  let at = base + HEADER;
  const xs = new Float32Array(buf, at, n); at += 4 * n;
  const ys = new Float32Array(buf, at, n); at += 4 * n;
  let cs;
  if (flags & SCALE) { cs = new Float32Array(buf, at, n); at += 4 * n; }
  else { cs = new Uint16Array(buf, at, n); at += 2 * n + ((4 - ((2 * n) % 4)) % 4); }
  let texts = null;
  if (flags & TEXTS) {  // decoded one at a time, when the pointer rests on a point
    const offsets = new Uint32Array(buf, at, n + 1);
    const utf8 = new Uint8Array(buf, at + 4 * (n + 1), bytes.length - (at - base) - 4 * (n + 1));
    const decoder = new TextDecoder();
    texts = { get: (i) => decoder.decode(utf8.subarray(offsets[i], offsets[i + 1])) };
  }
  return { digest: digestOf(bytes), n, xs, ys, cs, texts };
}

function acquire(bytes, digest) {
  const entry = REGISTRY.tables.get(digest);
  if (entry) { entry.users++; return; }  // drawn again (a rerun, another page): not decoded again
  let table;
  try {
    table = unpack(bytes);
  } catch (err) {
    console.error("vendiscope: the map's points could not be read", err);
    return;
  }
  REGISTRY.tables.set(digest, { table, users: 1 });
  const waiting = REGISTRY.waiting.get(digest) || [];
  REGISTRY.waiting.delete(digest);
  for (const wake of waiting) {
    try { wake(); } catch (err) { console.error(err); }
  }
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
  const state = parentElement.__vsPoints || (parentElement.__vsPoints = { digest: null });
  if (data) {
    const bytes = asBytes(data), digest = digestOf(bytes);
    if (digest !== state.digest) {  // compared by digest: no copy of the blob is kept here
      acquire(bytes, digest);
      if (state.digest) release(state.digest);
      state.digest = digest;
    }
  }
  const mine = state.digest;
  // a cleanup releases what this call holds, and only while it still holds it: a late cleanup of
  // an earlier call must not take the points from under a newer one
  return () => {
    if (mine && state.digest === mine) {
      release(mine);
      state.digest = null;
    }
  };
}
