/**
 * Plain 2-D matrix products (the linear layers', C = A @ B) on the wasm backend, by a kernel of the
 * engine's own (engine/wasm/gemm.wat) in place of tfjs-backend-wasm's XNNPACK path where it was
 * measured faster (engine/README, "Linear layers on wasm").
 *
 * XNNPACK's float32 GEMM in tfjs's wasm build multiplies and adds separately and ran at about
 * 14-22 GFLOP/s at the engine's shapes on an x86-64 core, with some 10 us of set-up a call. The
 * kernel here uses relaxed SIMD's fused multiply-add on 4 x 8 register tiles over 8-column panels
 * of B, each copied to lie contiguous first; a B met a second time (a weight) is packed whole once
 * and the copy kept until its data is freed. Measured with a dozen weights in turn: 1.3-1.8x
 * XNNPACK from 4 rows up (batched decoding, prefill, training); at 1 row its arithmetic is no
 * faster, but a decoding step at batch 1 is 10-20% faster without XNNPACK's per-call set-up, and
 * every row of a product then gets the same arithmetic however many rows it shares the product with.
 *
 * It replaces the BatchMatMul kernel on wasm and hands every other case to the backend's own
 * kernel: transposes, batches of matrices, other dtypes, N not a multiple of 8,
 * B over 16 MiB.
 *
 * Relaxed SIMD is on by default from Node 22; Node 20's V8 has it behind
 * `--experimental-wasm-relaxed-simd`, which is set on the first load when the module does not
 * compile without it. If it still does not compile, XNNPACK serves every product and the log says
 * why. `f32x4.relaxed_madd` is fused on processors with FMA (x86-64 with FMA3, arm64) and a
 * multiply then an add elsewhere, so results can differ from XNNPACK's (and between such
 * machines) by float32 rounding; on one machine they are deterministic.
 * `DOCTOR_AGENT_WASM_GEMM=0` turns the kernel off.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import * as tf from './tf.ts';
import type { WasmBackend } from './attention-kernel.ts';

export const GEMM_WASM_PATH = join(import.meta.dirname, 'wasm', 'gemm.wasm');

interface GemmExports {
  /** C[M x N] = A[M x K] @ B[K x N]; byte addresses, row strides in elements, pack: 0 or room for K x 8 floats. */
  gemm(a: number, b: number, c: number, M: number, K: number, N: number, lda: number, ldb: number, ldc: number, pack: number): void;
  /** B[K x N] copied to dst as N / 8 contiguous panels of K x 8. */
  pack(b: number, dst: number, K: number, N: number, ldb: number): void;
  /** C[M x N] = A[M x K] @ B, B as `pack` left it at bp. */
  gemm_packed(a: number, bp: number, c: number, M: number, K: number, N: number, lda: number, ldc: number): void;
}

/** A packed copy of B at byte address p, for B's shape K x N (a reshape shares its data, not its layout). */
interface Packed {
  p: number;
  K: number;
  N: number;
}

interface Instance {
  k: GemmExports;
  /** Room for packing panels of B (K x 8 floats) in the backend's heap, grown on demand. */
  pack: number;
  packFloats: number;
  /** Packed copies of the B operands met more than once (weights), by their data, freed with it. */
  packed: WeakMap<tf.DataId, Packed>;
  /** B operands met once: a second product with one packs it for good. */
  seen: WeakSet<tf.DataId>;
}

let compiled: WebAssembly.Module | null | undefined;
let loadError = '';
const instances = new WeakMap<object, Instance | null>();
let enabled = process.env.DOCTOR_AGENT_WASM_GEMM !== '0';
const logged = new Set<string>();
let announced = false;

/** What the kernel has done in this process: products by path, and the bytes of packed copies held now. */
export const gemmStats = { packedProducts: 0, panelProducts: 0, packedBytes: 0 };

function compile(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(GEMM_WASM_PATH));
  } catch (e) {
    loadError = (e as Error).message;
    return (compiled = null);
  }
  try {
    compiled = new WebAssembly.Module(bytes);
  } catch {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      compiled = new WebAssembly.Module(bytes);
    } catch (e) {
      loadError = `relaxed SIMD unavailable in this Node (${(e as Error).message})`;
      compiled = null;
    }
  }
  return compiled;
}

function instanceFor(be: WasmBackend): Instance | null {
  let inst = instances.get(be);
  if (inst !== undefined) return inst;
  inst = null;
  const mod = compile();
  const memory = be.wasm?.asm?.memory;
  if (mod && memory instanceof WebAssembly.Memory) {
    try {
      inst = {
        k: new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as GemmExports,
        pack: 0, packFloats: 0, packed: new WeakMap(), seen: new WeakSet(),
      };
      // A packed copy lives as long as its tensor's data: freed when the backend frees that.
      const packed = inst.packed;
      const dispose = be.disposeData.bind(be);
      be.disposeData = (dataId: tf.DataId, force?: boolean) => {
        const freed = dispose(dataId, force);
        const p = freed ? packed.get(dataId) : undefined;
        if (p) release(be, packed, dataId, p);
        return freed;
      };
    } catch (e) {
      loadError = (e as Error).message;
    }
  } else if (mod) {
    loadError = 'no memory found on the backend';
  }
  instances.set(be, inst);
  return inst;
}

/**
 * Forgets what the kernel knows of a tensor's data (its packed copy, that it was met): for data
 * written in place (engine/wasm-kernels.ts `writeAlong`), which a packed copy would no longer match.
 */
export function forgetPacked(be: WasmBackend, dataId: tf.DataId): void {
  const inst = instances.get(be);
  if (!inst) return;
  inst.seen.delete(dataId);
  const p = inst.packed.get(dataId);
  if (p) release(be, inst.packed, dataId, p);
}

function release(be: WasmBackend, packed: WeakMap<tf.DataId, Packed>, dataId: tf.DataId, copy: Packed): void {
  packed.delete(dataId);
  be.wasm._free(copy.p);
  gemmStats.packedBytes -= copy.K * copy.N * 4;
}

/** Turns the kernel off (XNNPACK for every product) or back on; for comparisons in tests and benchmarks. */
export function setWasmGemm(on: boolean): void {
  enabled = on;
}

/** Whether the kernel serves the current backend (wasm, the module loaded, not turned off); logs the choice once. */
export function wasmGemmActive(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const inst = enabled ? instanceFor(tf.backend() as unknown as WasmBackend) : null;
  const line = inst ? 'linear matMuls: WebAssembly relaxed-SIMD kernel (fused multiply-add) on the wasm backend'
    : `linear matMuls: XNNPACK (${enabled ? loadError : 'turned off'})`;
  if (!logged.has(line)) {
    process.stderr.write(`engine: ${line}\n`);
    logged.add(line);
  }
  return inst !== null;
}

/** Largest B (in floats) the kernel takes: a packed copy of each is kept (16 MiB). */
const MAX_B = 1 << 22;

/**
 * Whether the kernel takes an M x K @ K x N product: any number of rows (engine/README: 1.3-1.8x
 * XNNPACK from 4 rows; from 1, decoding steps at batch 1 10-20% faster), N a
 * multiple of 8, B at most 16 MiB. By shape alone, so a product gives the same bits whenever it
 * runs (the first product of a B packs its panels on the way, later ones read the kept copy: the
 * same arithmetic).
 */
export function gemmTakes(M: number, K: number, N: number): boolean {
  return M >= 1 && K >= 1 && N >= 8 && N % 8 === 0 && K * N <= MAX_B;
}

type MatMulArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: unknown; attrs: { transposeA?: boolean; transposeB?: boolean } };
const size = (shape: number[]) => shape.reduce((x, y) => x * y, 1);

/** The wasm backend's BatchMatMul with the plain products `gemmTakes` accepts run by the kernel; `own` runs the rest. */
export function fastMatMul(own: tf.KernelFunc): tf.KernelFunc {
  return ((args: MatMulArgs) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs;
    const ra = a.shape.length, rb = b.shape.length;
    if (!enabled || transposeA || transposeB || a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2
      || size(a.shape.slice(0, -2)) !== 1 || size(b.shape.slice(0, -2)) !== 1) return own(args as never);
    const M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
    const be = args.backend as WasmBackend;
    if (K !== b.shape[rb - 2] || !gemmTakes(M, K, N)) return own(args as never);
    if (!announced) {
      announced = true;
      wasmGemmActive();
    }
    const inst = instanceFor(be);
    if (!inst) return own(args as never);
    const at = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;
    // A B met before (a weight) is packed once and kept; one met for the first time is marked.
    // A copy packed for another shape of the same data (a reshape) is replaced.
    const before = inst.seen.has(b.dataId);
    let copy = inst.packed.get(b.dataId);
    if (copy && (copy.K !== K || copy.N !== N)) {
      release(be, inst.packed, b.dataId, copy);
      copy = undefined;
    }
    if (!copy && before) {
      // No room for the copy (malloc gives 0): this product reads B in place, panel by panel.
      const p = be.wasm._malloc(K * N * 4);
      if (p) {
        copy = { p, K, N };
        inst.k.pack(at(b), p, K, N, N);
        inst.packed.set(b.dataId, copy);
        gemmStats.packedBytes += K * N * 4;
      }
    }
    if (!before) inst.seen.add(b.dataId);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = be.makeOutput([...outer, M, N], 'float32');
    if (copy) {
      inst.k.gemm_packed(at(a), copy.p, at(out), M, K, N, K, N);
      gemmStats.packedProducts++;
      return out;
    }
    if (inst.packFloats < K * 8) {
      if (inst.pack) be.wasm._free(inst.pack);
      inst.packFloats = Math.max(K * 8, 4096);
      inst.pack = be.wasm._malloc(inst.packFloats * 4);
      if (!inst.pack) inst.packFloats = 0;
    }
    inst.k.gemm(at(a), at(b), at(out), M, K, N, K, N, N, inst.pack);
    gemmStats.panelProducts++;
    return out;
  }) as unknown as tf.KernelFunc;
}
