/**
 * Batched matrix products for attention, a [G, M, K] @ b [G, K, N] -> [G, M, N], run by a small
 * WebAssembly SIMD kernel (engine/wasm/attention.wat) on the tensors' host data. On the wasm
 * backend tfjs's own batched matMul has no fast path (about 1.5-2 GFLOP/s); this kernel, copies
 * in and out included, is several times faster at attention's shapes. The gradient uses the same
 * kernel: da = dy @ bᵀ, db = aᵀ @ dy.
 *
 * Used on the wasm and cpu backends (host data is one copy away); elsewhere (e.g. tfjs-node), or
 * when the kernel cannot load, `batchMatMul` is plain tf.matMul. The choice is logged once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from './tf.ts';

interface Exports {
  memory: WebAssembly.Memory;
  mm(a: number, b: number, c: number, M: number, K: number, N: number, sai: number, sak: number): void;
  transpose(src: number, dst: number, R: number, C: number): void;
}

export const WASM_PATH = join(import.meta.dirname, 'wasm', 'attention.wasm');

let kernel: Exports | null | undefined;
let loadError = '';

/** The kernel's exports, or null (with the reason in loadError) when it cannot load. */
function load(): Exports | null {
  if (kernel !== undefined) return kernel;
  try {
    const module = new WebAssembly.Module(readFileSync(WASM_PATH));
    kernel = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
  } catch (e) {
    loadError = (e as Error).message;
    kernel = null;
  }
  return kernel;
}

/** How products of operand layouts are formed: `nn` a @ b, `nt` a @ bᵀ, `tn` aᵀ @ b. */
export type Layout = 'nn' | 'nt' | 'tn';

/**
 * The batched product on host arrays: for `nn` a is [G, M, K] and b [G, K, N]; for `nt` b is
 * [G, N, K]; for `tn` a is [G, K, M]. Returns c [G, M, N] as a view into the kernel's memory,
 * valid until the next call (copy it to keep it).
 */
export function hostBatchMatMul(a: Float32Array, b: Float32Array, G: number, M: number, K: number, N: number, layout: Layout): Float32Array {
  const k = load();
  if (!k) throw new Error(`attention kernel unavailable: ${loadError}`);
  if (a.length !== G * M * K || b.length !== G * K * N) {
    throw new Error(`hostBatchMatMul: operand sizes ${a.length} and ${b.length} do not fit G=${G} M=${M} K=${K} N=${N}`);
  }
  // Layout in the kernel's memory: a, b, c, then one transposed matrix of b (for `nt`).
  const aOff = 0, bOff = aOff + a.length * 4, cOff = bOff + b.length * 4, tOff = cOff + G * M * N * 4;
  const need = tOff + (layout === 'nt' ? K * N * 4 : 0);
  const have = k.memory.buffer.byteLength;
  if (need > have) k.memory.grow(Math.ceil((need - have) / 65536));
  const heap = new Float32Array(k.memory.buffer);
  heap.set(a, aOff / 4);
  heap.set(b, bOff / 4);
  const sai = layout === 'tn' ? 1 : K, sak = layout === 'tn' ? M : 1;
  for (let g = 0; g < G; g++) {
    const ag = aOff + g * M * K * 4, bg = bOff + g * K * N * 4, cg = cOff + g * M * N * 4;
    if (layout === 'nt') {
      k.transpose(bg, tOff, N, K);
      k.mm(ag, tOff, cg, M, K, N, sai, sak);
    } else {
      k.mm(ag, bg, cg, M, K, N, sai, sak);
    }
  }
  return heap.subarray(cOff / 4, cOff / 4 + G * M * N);
}

const logged = new Set<string>();
let enabled = true;

/** Turns the kernel off (tf.matMul everywhere) or back on; for comparisons in tests and benchmarks. */
export function setAttentionKernel(on: boolean): void {
  enabled = on;
}

/** Whether batchMatMul runs the kernel on the current backend (logged once per choice). */
export function kernelActive(): boolean {
  const backend = tf.getBackend();
  const active = enabled && (backend === 'wasm' || backend === 'cpu') && load() !== null;
  const why = !enabled ? 'turned off' : load() === null ? `kernel did not load: ${loadError}` : `backend ${backend}`;
  const line = active
    ? `attention matMuls: WebAssembly SIMD kernel on the ${backend} backend`
    : `attention matMuls: tf.matMul (${why})`;
  if (!logged.has(line)) {
    process.stderr.write(`engine: ${line}\n`);
    logged.add(line);
  }
  return active;
}

/** The product as a new tensor [G, M, N] (a copy of the kernel's output). */
function product(a: tf.Tensor, b: tf.Tensor, G: number, M: number, K: number, N: number, layout: Layout): tf.Tensor3D {
  const c = hostBatchMatMul(a.dataSync() as Float32Array, b.dataSync() as Float32Array, G, M, K, N, layout);
  // The wasm backend copies what it is given; the cpu backend keeps the array, so it gets its own.
  return tf.tensor3d(tf.getBackend() === 'wasm' ? c : c.slice(), [G, M, N]);
}

const kernelMatMul = tf.customGrad(((a: tf.Tensor3D, b: tf.Tensor3D, save: tf.GradSaveFunc) => {
  const [G, M, K] = a.shape, N = b.shape[2];
  save([a, b]);
  return {
    value: product(a, b, G, M, K, N, 'nn'),
    gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [
      product(dy, sb, G, M, N, K, 'nt'), // [G, M, K] = dy [G, M, N] @ bᵀ
      product(sa, dy, G, K, M, N, 'tn'), // [G, K, N] = aᵀ [G, K, M] @ dy
    ],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** a [G, M, K] @ b [G, K, N] -> [G, M, N], float32, with gradients for both. */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) {
    throw new Error(`batchMatMul: shapes [${a.shape}] and [${b.shape}] do not multiply`);
  }
  if (!kernelActive() || a.dtype !== 'float32' || b.dtype !== 'float32') return tf.matMul(a, b);
  return kernelMatMul(a, b) as tf.Tensor3D;
}
