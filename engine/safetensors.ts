/**
 * The safetensors format: 8 bytes (little-endian u64) header length N, N bytes of JSON
 * header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {..}}, then the
 * raw little-endian data (offsets relative to its start). Reads F32, F16 and BF16 into
 * Float32Array; writes F32 or BF16. Tensors are read one at a time from the file, so a
 * large checkpoint is never held twice.
 */
import { endianness } from 'node:os';
import { closeSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';

export type Dtype = 'F32' | 'F16' | 'BF16';
const SIZES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const READABLE = new Set(['F32', 'F16', 'BF16']);

export interface TensorEntry {
  dtype: string;
  shape: number[];
  /** Byte offsets within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  path: string;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Reads one tensor as float32; throws for unknown names and unsupported dtypes. */
  read(name: string): Float32Array;
  close(): void;
}

const LITTLE_ENDIAN = endianness() === 'LE';
const MAX_HEADER = 100 * 1024 * 1024;

/** Opens a file and validates its header; every problem names the file and what is wrong. */
export function openSafetensors(path: string): SafetensorsFile {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const bad = (msg: string) => new Error(`${path}: not a valid safetensors file: ${msg}`);
    if (size < 8) throw bad(`file is ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > MAX_HEADER || 8 + n > size) throw bad(`header length ${n} does not fit in a ${size}-byte file`);
    const headerBuf = Buffer.alloc(n);
    readSync(fd, headerBuf, 0, n, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (err) {
      throw bad(`header is not JSON (${(err as Error).message})`);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
    const dataStart = 8 + n, dataSize = size - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') { metadata = raw as Record<string, string>; continue; }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e?.dtype !== 'string' || !(e.dtype in SIZES)) throw bad(`tensor "${name}" has unknown dtype ${JSON.stringify(e?.dtype)}`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor "${name}" has an invalid shape ${JSON.stringify(e.shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0) || off[0] > off[1]) {
        throw bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
      }
      const expected = (e.shape as number[]).reduce((a, b) => a * b, 1) * SIZES[e.dtype];
      if (off[1] - off[0] !== expected) throw bad(`tensor "${name}" (${e.dtype} [${e.shape}]) needs ${expected} bytes but its offsets span ${off[1] - off[0]}`);
      if (off[1] > dataSize) throw bad(`tensor "${name}" ends at byte ${off[1]} of a ${dataSize}-byte data section (file truncated?)`);
      tensors.set(name, { dtype: e.dtype, shape: e.shape as number[], begin: off[0], end: off[1] });
    }
    const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i][1].begin < spans[i - 1][1].end) throw bad(`tensors "${spans[i - 1][0]}" and "${spans[i][0]}" overlap`);
    }
    let open = true;
    return {
      path, tensors, metadata,
      read(name: string): Float32Array {
        if (!open) throw new Error(`${path}: file already closed`);
        const e = tensors.get(name);
        if (!e) throw new Error(`${path}: no tensor named "${name}"`);
        if (!READABLE.has(e.dtype)) {
          throw new Error(`${path}: tensor "${name}" has dtype ${e.dtype}; only F32, F16 and BF16 can be loaded (convert the checkpoint to one of them)`);
        }
        const bytes = Buffer.alloc(e.end - e.begin);
        if (bytes.length > 0) readSync(fd, bytes, 0, bytes.length, dataStart + e.begin);
        return toFloat32(bytes, e.dtype as Dtype);
      },
      close() { if (open) { closeSync(fd); open = false; } },
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Decodes little-endian F32 / F16 / BF16 bytes. */
export function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) return new Float32Array(new Uint8Array(bytes).buffer);
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const n = bytes.length / 2;
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = view.getUint16(i * 2, true) << 16;
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  return out;
}

/** IEEE 754 half precision to a JS number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 to bfloat16 bits, rounding to nearest even (NaN kept NaN). */
export function floatToBf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff)) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  /** The values, or a function giving them when the tensor is written (one at a time). */
  data: Float32Array | (() => Float32Array);
}

/** Writes tensors (sorted by name) as F32 or BF16, with string metadata ({format: "pt"} by default). */
export function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  opts: { dtype?: 'F32' | 'BF16'; metadata?: Record<string, string> } = {},
): void {
  const dtype = opts.dtype ?? 'F32';
  const width = SIZES[dtype];
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...opts.metadata } };
  let offset = 0;
  for (const t of sorted) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (header[t.name]) throw new Error(`writeSafetensors: duplicate tensor name "${t.name}"`);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * width] };
    offset += count * width;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of sorted) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (count !== data.length) throw new Error(`writeSafetensors: "${t.name}" has ${data.length} values but shape [${t.shape}]`);
      writeSync(fd, encode(data, dtype));
    }
  } finally {
    closeSync(fd);
  }
}

function encode(data: Float32Array, dtype: 'F32' | 'BF16'): Buffer {
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const buf = Buffer.alloc(data.length * 4);
    for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], i * 4);
    return buf;
  }
  const buf = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) buf.writeUInt16LE(floatToBf16(data[i]), i * 2);
  return buf;
}
