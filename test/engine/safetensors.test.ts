import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { floatToBf16, halfToFloat, openSafetensors, writeSafetensors } from '../../engine/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));

/** A safetensors file built by hand: header JSON, then the given raw bytes. */
function handWritten(path: string, header: object, data: number[]): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.from(data)]));
}

test('F32 round trip is exact and carries format=pt metadata', () => {
  const path = join(dir, 'f32.safetensors');
  const a = new Float32Array([1.5, -2.25, 3.0e-8, 1e30, 0, -0]);
  const b = new Float32Array([7]);
  writeSafetensors(path, [{ name: 'b.weight', shape: [1], data: b }, { name: 'a.weight', shape: [2, 3], data: a }]);
  const bytes = readFileSync(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + headerLen) % 8, 0, 'data section is 8-byte aligned');
  const f = openSafetensors(path);
  assert.deepEqual(f.metadata, { format: 'pt' });
  assert.deepEqual(f.tensors.get('a.weight')?.shape, [2, 3]);
  assert.deepEqual(f.read('a.weight'), a);
  assert.deepEqual(f.read('b.weight'), b);
  assert.throws(() => f.read('c'), /no tensor named "c"/);
  f.close();
});

test('F16 written by hand reads back, subnormals and infinities included', () => {
  const path = join(dir, 'f16.safetensors');
  // 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001, -inf = 0xFC00, 1/3 ~ 0x3555
  const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0xfc00, 0x3555];
  const data = halves.flatMap((h) => [h & 0xff, h >> 8]);
  handWritten(path, { x: { dtype: 'F16', shape: [3, 2], data_offsets: [0, 12] } }, data);
  const got = openSafetensors(path).read('x');
  assert.deepEqual([...got], [1, -2, 65504, Math.fround(2 ** -24), -Infinity, Math.fround(0.333251953125)]);
  assert.equal(halfToFloat(0x7e00), NaN);
});

test('BF16 written by hand reads back; BF16 writing rounds to nearest even', () => {
  const path = join(dir, 'bf16.safetensors');
  // 1.0 = 0x3F80, -3.0 = 0xC040, 3.140625 = 0x4049
  const data = [0x3f80, 0xc040, 0x4049].flatMap((h) => [h & 0xff, h >> 8]);
  handWritten(path, { __metadata__: { format: 'pt' }, y: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } }, data);
  assert.deepEqual([...openSafetensors(path).read('y')], [1, -3, 3.140625]);
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(Math.PI), 0x4049); // 3.14159 -> 3.140625
  assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // exact tie rounds to even (down)
  assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie rounds to even (up)
  const out = join(dir, 'bf16-out.safetensors');
  writeSafetensors(out, [{ name: 'z', shape: [2], data: new Float32Array([Math.PI, -0.5]) }], { dtype: 'BF16' });
  const f = openSafetensors(out);
  assert.equal(f.tensors.get('z')?.dtype, 'BF16');
  assert.deepEqual([...f.read('z')], [3.140625, -0.5]);
});

test('other dtypes are rejected with the tensor name and what to do', () => {
  const path = join(dir, 'i64.safetensors');
  handWritten(path, { ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, [1, 0, 0, 0, 0, 0, 0, 0]);
  const f = openSafetensors(path);
  assert.throws(() => f.read('ids'), /tensor "ids" has dtype I64; only F32, F16 and BF16 can be loaded/);
});

test('bad headers are reported clearly', () => {
  const short = join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  assert.throws(() => openSafetensors(short), /short\.safetensors: not a valid safetensors file: file is 3 bytes/);

  const huge = join(dir, 'huge.safetensors');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(1000n);
  writeFileSync(huge, Buffer.concat([len, Buffer.from('{}')]));
  assert.throws(() => openSafetensors(huge), /header length 1000 does not fit/);

  const notJson = join(dir, 'notjson.safetensors');
  const body = Buffer.from('{nope');
  const l2 = Buffer.alloc(8);
  l2.writeBigUInt64LE(BigInt(body.length));
  writeFileSync(notJson, Buffer.concat([l2, body]));
  assert.throws(() => openSafetensors(notJson), /header is not JSON/);

  const sizes = join(dir, 'sizes.safetensors');
  handWritten(sizes, { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 8] } }, new Array(8).fill(0));
  assert.throws(() => openSafetensors(sizes), /tensor "w" \(F32 \[2,2\]\) needs 16 bytes but its offsets span 8/);

  const truncated = join(dir, 'truncated.safetensors');
  handWritten(truncated, { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Array(8).fill(0));
  assert.throws(() => openSafetensors(truncated), /ends at byte 16 of a 8-byte data section \(file truncated\?\)/);

  const overlap = join(dir, 'overlap.safetensors');
  handWritten(overlap, { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Array(12).fill(0));
  assert.throws(() => openSafetensors(overlap), /overlap/);

  const dtype = join(dir, 'dtype.safetensors');
  handWritten(dtype, { a: { dtype: 'Q4', shape: [2], data_offsets: [0, 1] } }, [0]);
  assert.throws(() => openSafetensors(dtype), /tensor "a" has unknown dtype "Q4"/);
});
