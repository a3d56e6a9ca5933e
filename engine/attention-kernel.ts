/**
 * Batched matrix products for attention, a [G, M, K] @ b [G, K, N] -> [G, M, N], run by a small
 * WebAssembly SIMD kernel (engine/wasm/attention.wat). On the wasm backend tfjs's own batched
 * matMul has no fast path (about 1.5-2 GFLOP/s); this kernel reads and writes the tensors in the
 * backend's heap in place and is several times faster at attention's shapes. On the cpu backend
 * it works on the tensors' arrays through a memory of its own (one copy in, one out).
 *
 * It is a registered kernel, AttentionMatMul, with a `layout` attribute (`nn` a @ b, `nt` a @ bᵀ,
 * `tn` aᵀ @ b) and a registered gradient: da = dy @ bᵀ, db = aᵀ @ dy. Where it is not registered
 * (e.g. tfjs-node) or the module cannot load, `batchMatMul` is plain tf.matMul; the choice is logged once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from './tf.ts';

/** `nn` a [G, M, K] @ b [G, K, N]; `nt` a [G, M, K] @ bᵀ with b [G, N, K]; `tn` aᵀ @ b with a [G, K, M]. */
export type Layout = 'nn' | 'nt' | 'tn';

export interface Exports {
  mm(a: number, b: number, c: number, M: number, K: number, N: number, sai: number, sak: number, sb: number): void;
  transpose(src: number, dst: number, R: number, C: number): void;
  /** Byte addresses and sizes: `rows` copies of `bytes` bytes, each from src + r * srcStride to dst + r * dstStride. */
  copy_rows(dst: number, dstStride: number, src: number, srcStride: number, bytes: number, rows: number): void;
  /** Row i of dst (`bytes` bytes) is row idx[i] of src, for n int32 indices at byte address idx. */
  gather_rows(dst: number, src: number, idx: number, n: number, bytes: number): void;
  /** dst[r, :] = exp(src[r, :] - max(src[r, :])) for `rows` rows of V float32. */
  exp_shifted(src: number, dst: number, rows: number, V: number): void;
  /** out = x * cos + rotate_half(x) * sin for `rows` rows of `heads` heads of d, cos and sin [rows, d]. */
  rope(x: number, cos: number, sin: number, out: number, rows: number, heads: number, d: number): void;
  /** out = (x * r) * w for `rows` rows of C float32, r = 1 / sqrt(mean(x^2) + eps) per row, w [C]. */
  rms_norm(x: number, w: number, out: number, rows: number, C: number, eps: number): void;
  /** c[r, j] += b[j] for `rows` rows of N float32. */
  add_rows(c: number, b: number, rows: number, N: number): void;
  /** out = (g * s) * u over n float32. */
  gated(g: number, s: number, u: number, out: number, n: number): void;
  /** The ids of n float32 logits at src, largest first (ties by lower id); buffers of n keys / ids each, counts of 2048; returns the ids' address. */
  rank_desc(src: number, n: number, ka: number, kb: number, ia: number, ib: number, counts: number): number;
}

export const WASM_PATH = join(import.meta.dirname, 'wasm', 'attention.wasm');
export const KERNEL_NAME = 'AttentionMatMul';

let compiled: WebAssembly.Module | null | undefined;
let loadError = '';

function instantiate(memory: WebAssembly.Memory): Exports | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(WASM_PATH));
    } catch (e) {
      loadError = (e as Error).message;
      compiled = null;
    }
  }
  if (!compiled) return null;
  try {
    return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Exports;
  } catch (e) {
    loadError = (e as Error).message;
    return null;
  }
}

/** G, M, K, N of a product from its operands' shapes and layout. */
function dims(aShape: number[], bShape: number[], layout: Layout): [number, number, number, number] {
  const [G, a1, a2] = aShape, [, b1, b2] = bShape;
  if (layout === 'tn') return [G, a2, a1, b2];
  if (layout === 'nt') return [G, a1, a2, b1];
  return [G, a1, a2, b2];
}

/**
 * Runs the product for G matrices at byte addresses a, b, c; t is room for one K x N matrix (`nt`
 * only). `bView` (`nn` only): b's matrices are [rows, cols] with rows >= K and cols >= N, and the
 * product reads their first K rows and N columns. `skip` (`nn` only), per matrix g: the first
 * skip[g] columns of b (`skip.on` 'n': c's columns there are written MASKED_SCORE) or the first skip[g] rows
 * of b and columns of a (`skip.on` 'k': those terms are left out of the sums) are not read. With
 * keys or values that are padding in those places, and the scores there masked (probabilities 0),
 * this gives the same attention bit for bit: the sums over the other terms are made in the same order.
 */
function run(k: Exports, a: number, b: number, c: number, t: number, G: number, M: number, K: number, N: number, layout: Layout,
  bView?: { rows: number; cols: number }, skip?: { on: 'n' | 'k'; at: number[]; heap: () => Float32Array }): void {
  const sai = layout === 'tn' ? 1 : K, sak = layout === 'tn' ? M : 1;
  const sb = bView ? bView.cols : N, bStride = bView ? bView.rows * bView.cols : K * N;
  let heap: Float32Array | undefined;
  for (let g = 0; g < G; g++) {
    const ag = a + g * M * K * 4, bg = b + g * bStride * 4, cg = c + g * M * N * 4;
    const s0 = skip ? Math.min(skip.at[g], skip.on === 'n' ? N : K) : 0;
    if (layout === 'nt') {
      k.transpose(bg, t, N, K);
      k.mm(ag, t, cg, M, K, N, sai, sak, N);
    } else if (s0 === 0) {
      k.mm(ag, bg, cg, M, K, N, sai, sak, sb);
    } else if (skip!.on === 'k') {
      k.mm(ag + s0 * 4, bg + s0 * sb * 4, cg, M, K - s0, N, sai, sak, sb);
    } else {
      heap ??= skip!.heap();
      for (let i = 0; i < M; i++) {
        const row = cg + i * N * 4;
        heap.fill(MASKED_SCORE, row / 4, row / 4 + s0);
        if (s0 < N) k.mm(ag + i * sai * 4, bg + s0 * 4, row + s0 * 4, 1, K, N - s0, sai, sak, sb);
      }
    }
  }
}

let host: { k: Exports; memory: WebAssembly.Memory } | null | undefined;

/** The module on a memory of its own (for host arrays), grown to at least `bytes`; null when it cannot load. */
function hostModule(bytes: number): { k: Exports; memory: WebAssembly.Memory } | null {
  if (host === undefined) {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const k = instantiate(memory);
    host = k ? { k, memory } : null;
  }
  if (host) {
    const have = host.memory.buffer.byteLength;
    if (bytes > have) host.memory.grow(Math.ceil((bytes - have) / 65536));
  }
  return host;
}

/**
 * The product on host arrays (operand shapes as for `layout`), through the kernel's own memory.
 * Returns c [G, M, N] as a view into that memory, valid until the next call (copy it to keep it).
 */
export function hostBatchMatMul(a: Float32Array, b: Float32Array, G: number, M: number, K: number, N: number, layout: Layout): Float32Array {
  if (a.length !== G * M * K || b.length !== G * K * N) {
    throw new Error(`hostBatchMatMul: operand sizes ${a.length} and ${b.length} do not fit G=${G} M=${M} K=${K} N=${N}`);
  }
  const aOff = 0, bOff = a.length * 4, cOff = bOff + b.length * 4, tOff = cOff + G * M * N * 4;
  const host = hostModule(tOff + K * N * 4);
  if (!host) throw new Error(`attention kernel unavailable: ${loadError}`);
  const heap = new Float32Array(host.memory.buffer);
  heap.set(a, aOff / 4);
  heap.set(b, bOff / 4);
  run(host.k, aOff, bOff, cOff, tOff, G, M, K, N, layout);
  return heap.subarray(cOff / 4, cOff / 4 + G * M * N);
}

/**
 * The ids of a row of logits from the largest to the smallest, equal ones by lower id, ranked by
 * the module on its own memory (`rank_desc`: the same keys and stable radix sort as
 * engine/sampling.ts `rankDescending`'s JavaScript, several times faster). A view into that
 * memory, valid until the next call; undefined when the module cannot load.
 */
export function hostRankDescending(logits: Float32Array): Int32Array | undefined {
  const V = logits.length;
  const counts = 0, src = 8192, ka = src + V * 4, kb = ka + V * 4, ia = kb + V * 4, ib = ia + V * 4;
  const host = hostModule(ib + V * 4);
  if (!host) return undefined;
  new Float32Array(host.memory.buffer, src, V).set(logits);
  const at = host.k.rank_desc(src, V, ka, kb, ia, ib, counts);
  return new Int32Array(host.memory.buffer, at, V);
}

/** The parts of the backends the kernels use (tfjs-backend-wasm's and -cpu's own fields). */
export interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}
interface CpuBackend {
  data: { get(id: tf.DataId): { values: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
type KernelArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: unknown; attrs?: tf.NamedAttrMap };

const wasmInstances = new WeakMap<object, Exports | null>();

/** The module's functions on a wasm backend's own heap (instantiated once per backend); null when it cannot load. */
export function wasmModule(be: WasmBackend): Exports | null {
  let k = wasmInstances.get(be);
  if (k === undefined) {
    const memory = be.wasm?.asm?.memory;
    if (memory instanceof WebAssembly.Memory) k = instantiate(memory);
    else {
      loadError = 'no memory found on the backend';
      k = null;
    }
    wasmInstances.set(be, k);
  }
  return k;
}

function wasmKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as WasmBackend, { a, b } = inputs, layout = attrs!.layout as Layout;
  const k = wasmModule(be);
  if (!k) throw new Error(`attention kernel unavailable on the wasm backend: ${loadError}`);
  // A prefix view of b (`nn`, attribute n): a [G, M, K] @ b[:, :K, :n], b wider and taller.
  const view = attrs!.n !== undefined;
  const [G, M, K, N] = view ? [a.shape[0], a.shape[1], a.shape[2], attrs!.n as number] : dims(a.shape, b.shape, layout);
  const out = be.makeOutput([G, M, N], 'float32');
  const t = layout === 'nt' ? be.wasm._malloc(K * N * 4) : 0;
  const at = (x: tf.TensorInfo) => be.dataIdMap.get(x.dataId).memoryOffset;
  const skipAt = attrs!.skip as number[] | undefined;
  const skip = skipAt && layout === 'nn'
    ? { on: attrs!.skipOn as 'n' | 'k', at: skipAt, heap: () => new Float32Array(be.wasm.asm.memory.buffer) }
    : undefined;
  run(k, at(a), at(b), at(out), t, G, M, K, N, layout, view ? { rows: b.shape[1], cols: b.shape[2] } : undefined, skip);
  if (t) be.wasm._free(t);
  return out;
}

function cpuKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const be = backend as CpuBackend, { a, b } = inputs, layout = attrs!.layout as Layout;
  if (attrs!.n !== undefined) throw new Error(`${KERNEL_NAME}: a prefix view of b is for the wasm backend`);
  const [G, M, K, N] = dims(a.shape, b.shape, layout);
  const values = (x: tf.TensorInfo) => be.data.get(x.dataId).values as Float32Array;
  return be.makeTensorInfo([G, M, N], 'float32', hostBatchMatMul(values(a), values(b), G, M, K, N, layout).slice());
}

function product(a: tf.Tensor, b: tf.Tensor, layout: Layout): tf.Tensor3D {
  return tf.engine().runKernel(KERNEL_NAME, { a, b }, { layout }) as tf.Tensor3D;
}

let registered = false;

/** Registers the kernel (wasm and cpu backends) and its gradient, once. */
function register(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: KERNEL_NAME, backendName: 'wasm', kernelFunc: wasmKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: KERNEL_NAME, backendName: 'cpu', kernelFunc: cpuKernel as unknown as tf.KernelFunc });
  tf.registerGradient({
    kernelName: KERNEL_NAME,
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy: tf.Tensor, [a, b]: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      if (attrs.layout !== 'nn' || attrs.n !== undefined) throw new Error(`${KERNEL_NAME}: only the nn layout of whole operands has a gradient`);
      return { a: () => product(dy, b, 'nt'), b: () => product(a, dy, 'tn') };
    }) as unknown as tf.GradFunc,
  });
}

const logged = new Set<string>();
let enabled = true;

let skipping = true;

/** The score of a key that is masked out (the attention bias's value there): probability 0 after softmax. */
export const MASKED_SCORE = -1e9;

/**
 * Whether `batchMatMulPrefix` skips the padding it is given on the current backend (wasm, with
 * the kernel loaded, unless turned off): its scores there are then already masked.
 */
export function paddingSkipActive(): boolean {
  return skipping && tf.getBackend() === 'wasm' && kernelActive();
}

/** Turns `batchMatMulPrefix`'s skipping of padding off (every position read) or back on; for comparisons in tests and benchmarks. */
export function setPaddingSkip(on: boolean): void {
  skipping = on;
}

/** Turns the kernel off (tf.matMul everywhere) or back on; for comparisons in tests and benchmarks. */
export function setAttentionKernel(on: boolean): void {
  enabled = on;
}

/** Whether the kernel loads and serves the current backend (wasm or cpu); logs the choice once. */
export function kernelActive(): boolean {
  const backend = tf.getBackend();
  let why = '';
  if (!enabled) why = 'turned off';
  else if (backend !== 'wasm' && backend !== 'cpu') why = `no kernel for the ${backend} backend`;
  else if (!compiledOk()) why = `the module did not load: ${loadError}`;
  else if (backend === 'wasm' && !wasmReady()) why = `the wasm backend's memory cannot be shared: ${loadError}`;
  const line = why ? `attention matMuls: tf.matMul (${why})` : `attention matMuls: WebAssembly SIMD kernel on the ${backend} backend`;
  if (!logged.has(line)) {
    process.stderr.write(`engine: ${line}\n`);
    logged.add(line);
  }
  return !why;
}

function compiledOk(): boolean {
  if (compiled === undefined) instantiate(new WebAssembly.Memory({ initial: 1 }));
  return compiled !== null;
}

function wasmReady(): boolean {
  return wasmModule(tf.backend() as unknown as WasmBackend) !== null;
}

/** a [G, M, K] @ b [G, K, N] -> [G, M, N], float32, with gradients for both. */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) {
    throw new Error(`batchMatMul: shapes [${a.shape}] and [${b.shape}] do not multiply`);
  }
  if (!kernelActive() || a.dtype !== 'float32' || b.dtype !== 'float32') return tf.matMul(a, b);
  register();
  return product(a, b, 'nn');
}

/**
 * a [G, M, K] @ b[:, :K, :n] for b [G, R, C] with R >= K and C >= n, reading that corner of b in
 * place (a KV cache with room to grow: keys [G, d, capacity] take n = the valid length, values
 * [G, capacity, d] take K = the valid length). On the wasm backend only (the kernel reads the
 * backend's heap); elsewhere the corner is sliced out. No gradient.
 *
 * `skip` (wasm only; elsewhere everything is computed): per matrix g, a number of leading cache
 * positions that are padding (left-padded rows of a batch): `on: 'n'` (scores = queries @ keys)
 * leaves their columns out and writes MASKED_SCORE there, the score a mask gives them (with a mask
 * added too they stay masked: probability 0 either way, so no attention bias is needed for them);
 * `on: 'k'` (probabilities @ values) leaves their terms out of the sums, whose probabilities are 0.
 * Attention gives the same result bit for bit, at the cost of the real positions only.
 */
export function batchMatMulPrefix(a: tf.Tensor3D, b: tf.Tensor3D, n: number, skip?: { on: 'n' | 'k'; at: number[] }): tf.Tensor3D {
  const [G, , K] = a.shape;
  if (b.shape[0] !== G || b.shape[1] < K || b.shape[2] < n || n < 1) {
    throw new Error(`batchMatMulPrefix: [${a.shape}] @ [${b.shape}][:, :${K}, :${n}] does not fit`);
  }
  if (skip && skip.at.length !== G) throw new Error(`batchMatMulPrefix: ${skip.at.length} skip counts for ${G} matrices`);
  const wasm = tf.getBackend() === 'wasm' && kernelActive() && a.dtype === 'float32' && b.dtype === 'float32';
  const skips = skipping && wasm && skip && skip.at.some((x) => x > 0);
  if (b.shape[1] === K && b.shape[2] === n && !skips) return batchMatMul(a, b);
  if (!wasm) return tf.tidy(() => batchMatMul(a, tf.slice(b, [0, 0, 0], [G, K, n])));
  register();
  return tf.engine().runKernel(KERNEL_NAME, { a, b }, { layout: 'nn', n, ...(skips ? { skip: skip!.at, skipOn: skip!.on } : {}) }) as tf.Tensor3D;
}
