/**
 * Kernels of the engine's own on the wasm backend.
 *
 * `ShiftedExp`: exp(x - max of x's row) over the last axis, the exponentials sampling draws from
 * (engine/decoder.ts), in one pass of four-lane float32 arithmetic (`exp_shifted` in
 * engine/wasm/attention.wat) where tfjs runs Max, Sub and an Exp of one libm expf call an element
 * (0.4 ms for a batch of 32 rows of 1,024 logits). Its exponentials are within float32 rounding of
 * expf's and element by element (a row's do not depend on its neighbours). Other backends compute
 * it with their own three kernels (`shiftedExp`).
 *
 * Leaner copies on the wasm backend: Concat, Slice and the row GatherV2 (an embedding lookup) run
 * as bulk-memory copies in the engine's WebAssembly module (engine/wasm/attention.wat, `copy_rows`
 * and `gather_rows`), on the backend's heap in place.
 *
 * tfjs-backend-wasm's Concat copies each outer row of each input with a typed-array `set` from
 * JavaScript, its Slice first copies the whole input out of the heap and then each row, and its
 * GatherV2 reads the indices back, checks them one closure call each and runs a generic strided
 * loop: appending one decoded token to a KV cache of 64 x 32 rows took 0.64 ms, re-forming a
 * batch-32 cache after a sequence left 3.6 ms, and looking up 1024 prompt tokens in a [1024, 128]
 * embedding 7.6 ms. The copies here move the same bytes to the same places (results are
 * bit-identical); other dtypes, empty tensors, batched or non-leading-axis gathers go to the
 * backend's own kernels.
 */
import * as tf from './tf.ts';
import { wasmModule, type Exports, type WasmBackend } from './attention-kernel.ts';
import { fastMatMul, forgetPacked } from './wasm-gemm.ts';
import { recording } from './ops.ts';

type ConcatArgs = { inputs: tf.TensorInfo[]; backend: unknown; attrs: { axis: number | number[] } };
type SliceArgs = { inputs: { x: tf.TensorInfo }; backend: unknown; attrs: { begin: number | number[]; size?: number | number[] } };
type GatherArgs = { inputs: { x: tf.TensorInfo; indices: tf.TensorInfo }; backend: unknown; attrs: { axis: number; batchDims: number } };

/** Elements of 4 bytes, which the copies move as they are. */
const FOUR_BYTES = new Set<tf.DataType>(['float32', 'int32']);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const offset = (be: WasmBackend, t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset;

function fastConcat(own: tf.KernelFunc): tf.KernelFunc {
  return ((args: ConcatArgs) => {
    const { inputs, attrs } = args;
    const be = args.backend as WasmBackend;
    const rank = inputs[0]?.shape.length ?? 0;
    const axisAttr = Array.isArray(attrs.axis) ? attrs.axis[0] : attrs.axis;
    const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
    const k = wasmModule(be);
    const plain = k && inputs.length > 1 && axis >= 0 && axis < rank
      && inputs.every((t) => FOUR_BYTES.has(t.dtype) && t.dtype === inputs[0].dtype && t.shape.length === rank && size(t.shape) > 0
        && t.shape.every((d, i) => i === axis || d === inputs[0].shape[i]));
    if (!plain) return own(args as never);
    const outShape = inputs[0].shape.slice();
    outShape[axis] = inputs.reduce((a, t) => a + t.shape[axis], 0);
    const outer = size(outShape.slice(0, axis));
    const rowBytes = size(outShape.slice(axis)) * 4;
    const out = be.makeOutput(outShape, inputs[0].dtype);
    const base = offset(be, out);
    let at = 0;
    for (const t of inputs) {
      const bytes = size(t.shape.slice(axis)) * 4;
      k.copy_rows(base + at, rowBytes, offset(be, t), bytes, bytes, outer);
      at += bytes;
    }
    return out;
  }) as unknown as tf.KernelFunc;
}

function fastGather(own: tf.KernelFunc): tf.KernelFunc {
  return ((args: GatherArgs) => {
    const { x, indices } = args.inputs;
    const be = args.backend as WasmBackend;
    const axis = args.attrs.axis < 0 ? args.attrs.axis + x.shape.length : args.attrs.axis;
    const k = wasmModule(be);
    if (!k || axis !== 0 || (args.attrs.batchDims ?? 0) !== 0 || !FOUR_BYTES.has(x.dtype) || indices.dtype !== 'int32'
      || x.shape.length < 1 || size(x.shape) === 0) return own(args as never);
    const n = size(indices.shape);
    const rows = x.shape[0];
    const at = offset(be, indices);
    const idx = new Int32Array(be.wasm.asm.memory.buffer, at, n);
    for (let i = 0; i < n; i++) {
      if (idx[i] < 0 || idx[i] >= rows) throw new Error(`GatherV2: the index value ${idx[i]} is not in [0, ${rows - 1}]`);
    }
    const rowShape = x.shape.slice(1);
    const out = be.makeOutput([...indices.shape, ...rowShape], x.dtype);
    if (n > 0) k.gather_rows(offset(be, out), offset(be, x), at, n, size(rowShape) * 4);
    return out;
  }) as unknown as tf.KernelFunc;
}

function fastSlice(own: tf.KernelFunc): tf.KernelFunc {
  return ((args: SliceArgs) => {
    const { x } = args.inputs;
    const be = args.backend as WasmBackend;
    const k = wasmModule(be);
    const rank = x.shape.length;
    if (!k || rank === 0 || !FOUR_BYTES.has(x.dtype) || size(x.shape) === 0) return own(args as never);
    const [begin, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs.begin, args.attrs.size);
    if (size(sz) === 0) return own(args as never);
    const strides = x.shape.map((_, i) => size(x.shape.slice(i + 1)));
    const full = (i: number) => begin[i] === 0 && sz[i] === x.shape[i];
    // The last axis cut short: below it every slice is a block of contiguous elements.
    let a = rank - 1;
    while (a > 0 && full(a)) a--;
    const blockBytes = sz[a] * strides[a] * 4;
    // Axes just above it that are whole form one strided run of blocks (one copy_rows call);
    // otherwise the axis above it alone does. The axes above those are counted through here.
    let top = a;
    while (top > 0 && full(top - 1)) top--;
    const runAxis = top < a ? -1 : a - 1;
    const loopAxes = runAxis >= 0 ? runAxis : top;
    const rows = runAxis >= 0 ? sz[runAxis] : size(sz.slice(top, a));
    const stride = a > 0 ? strides[a - 1] * 4 : 0;
    const out = be.makeOutput(sz, x.dtype);
    const src0 = offset(be, x) + (begin[a] * strides[a] + (runAxis >= 0 ? begin[runAxis] * strides[runAxis] : 0)) * 4;
    let dst = offset(be, out);
    const idx = begin.slice(0, loopAxes);
    for (;;) {
      let src = src0;
      for (let i = 0; i < loopAxes; i++) src += idx[i] * strides[i] * 4;
      k.copy_rows(dst, blockBytes, src, stride, blockBytes, rows);
      dst += rows * blockBytes;
      let i = loopAxes - 1;
      while (i >= 0 && ++idx[i] === begin[i] + sz[i]) idx[i] = begin[i--];
      if (i < 0) break;
    }
    return out;
  }) as unknown as tf.KernelFunc;
}

let inPlaceOn = true;

/** Turns in-place writes off (KV caches then concatenate, as on other backends) or back on; for comparisons in tests and benchmarks. */
export function setInPlaceWrites(on: boolean): void {
  inPlaceOn = on;
}

/** Whether the current backend is wasm with the engine's kernels registered and its module loaded. */
function onWasmModule(): boolean {
  return tf.getBackend() === 'wasm' && registered && wasmModule(tf.backend() as unknown as WasmBackend) !== null;
}

/** Whether tensors on the current backend can be written in place (`writeAlong`): wasm, with the engine's module. */
export function inPlaceWrites(): boolean {
  return inPlaceOn && onWasmModule();
}

/**
 * Writes src[..., :count, ...] (along `axis`) into dst[..., at:at + count, ...] in place, on the
 * wasm heap: for a KV cache that grows inside tensors with room to spare, so that appending a
 * token copies that token's keys and values, not the whole cache. dst and src agree on every other
 * axis; dst must be a tensor no one else reads at those places (a cache's own tensor, past its
 * valid length).
 */
export function writeAlong(dst: tf.Tensor, src: tf.Tensor, axis: number, count: number, at: number): void {
  const be = tf.backend() as unknown as WasmBackend;
  const k = inPlaceWrites() ? wasmModule(be) : null;
  if (!k) throw new Error('writeAlong: in-place writes need the wasm backend with the engine\'s module');
  const rank = dst.shape.length;
  const same = src.shape.length === rank && dst.shape.every((d, i) => i === axis || d === src.shape[i]);
  if (!same || dst.dtype !== src.dtype || !FOUR_BYTES.has(dst.dtype) || count < 0 || count > src.shape[axis] || at < 0 || at + count > dst.shape[axis]) {
    throw new Error(`writeAlong: cannot write [${src.shape}][:${count}] into [${dst.shape}] at ${at} along axis ${axis}`);
  }
  if (count === 0) return;
  forgetPacked(be, dst.dataId);
  const outer = size(dst.shape.slice(0, axis)), inner = size(dst.shape.slice(axis + 1)) * 4;
  k.copy_rows(offset(be, dst) + at * inner, dst.shape[axis] * inner, offset(be, src), src.shape[axis] * inner, count * inner, outer);
}

/** The backend of an engine kernel's call and the engine's module on it; the kernel named fails without the module. */
function engineModule(backend: unknown, kernel: string): { be: WasmBackend; k: Exports } {
  const be = backend as WasmBackend;
  const k = wasmModule(be);
  if (!k) throw new Error(`${kernel}: the engine's WebAssembly module is unavailable`);
  return { be, k };
}

export const SHIFTED_EXP = 'ShiftedExp';

function shiftedExpKernel(args: { inputs: { x: tf.TensorInfo }; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs;
  const { be, k } = engineModule(args.backend, SHIFTED_EXP);
  const V = x.shape[x.shape.length - 1];
  const out = be.makeOutput(x.shape, 'float32');
  if (V > 0) k.exp_shifted(offset(be, x), offset(be, out), size(x.shape) / V, V);
  return out;
}

/** exp(x - max over x's last axis), float32: one kernel on wasm, three elsewhere. */
export function shiftedExp(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error(`shiftedExp: float32 expected, got ${x.dtype}`);
  if (onWasmModule()) return tf.engine().runKernel(SHIFTED_EXP, { x }) as tf.Tensor;
  return tf.tidy(() => tf.exp(tf.sub(x, tf.max(x, -1, true))));
}

export const ROPE = 'EngineRope';

function ropeKernel(args: { inputs: { x: tf.TensorInfo; cos: tf.TensorInfo; sin: tf.TensorInfo }; backend: unknown; attrs: { shape: number[] } }): tf.TensorInfo {
  const { x, cos, sin } = args.inputs;
  const { be, k } = engineModule(args.backend, ROPE);
  const d = cos.shape[cos.shape.length - 1];
  const rows = size(cos.shape) / d;
  const out = be.makeOutput(args.attrs.shape, 'float32');
  k.rope(offset(be, x), offset(be, cos), offset(be, sin), offset(be, out), rows, size(x.shape) / (rows * d), d);
  return out;
}

/**
 * Rotary embedding where no gradient tape records (generation, scoring): x [N, heads * d] (N = the
 * rows of cos and sin, [N, d] in any shape), returned in `shape`: x * cos + rotate_half(x) * sin, one
 * kernel on wasm with the same float32 roundings as the Mul, Mul and Add it replaces (and the
 * rotation's exact product). Undefined where the kernel does not serve or a tape records (the caller
 * runs the general path).
 */
export function ropeNoGrad(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, shape: number[]): tf.Tensor | undefined {
  if (!onWasmModule() || !ropeOn || recording() || x.dtype !== 'float32' || cos.dtype !== 'float32' || sin.dtype !== 'float32') return undefined;
  const d = cos.shape[cos.shape.length - 1];
  const rows = cos.size / d;
  if (d % 2 !== 0 || sin.size !== cos.size || x.size % (rows * d) !== 0 || x.size !== size(shape)) return undefined;
  return tf.engine().runKernel(ROPE, { x, cos, sin }, { shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

let ropeOn = true;

export const RMS_NORM = 'EngineRmsNorm';

function rmsNormKernel(args: { inputs: { x: tf.TensorInfo; w: tf.TensorInfo }; backend: unknown; attrs: { eps: number } }): tf.TensorInfo {
  const { x, w } = args.inputs;
  const { be, k } = engineModule(args.backend, RMS_NORM);
  const C = x.shape[x.shape.length - 1];
  const out = be.makeOutput(x.shape, 'float32');
  if (C > 0) k.rms_norm(offset(be, x), offset(be, w), offset(be, out), size(x.shape) / C, C, args.attrs.eps);
  return out;
}

/**
 * RMSNorm where no gradient tape records (generation, scoring): x [N, C] and weight w [C], one kernel
 * on wasm with the roundings of the six kernels of the general path (ops.ts `rmsNorm`: Square,
 * Mean, Add, Rsqrt, Mul, Mul), so the same values bit for bit. Undefined where the kernel does not
 * serve or a tape records (the caller runs the general path).
 */
export function rmsNormNoGrad(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D | undefined {
  if (!onWasmModule() || !rmsNormOn || recording() || x.dtype !== 'float32' || w.dtype !== 'float32' || w.size !== x.shape[1]) return undefined;
  // eps as the float32 the general path adds (a float32 scalar tensor).
  return tf.engine().runKernel(RMS_NORM, { x, w }, { eps: Math.fround(eps) } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

let rmsNormOn = true;

export const LINEAR = 'EngineLinear';
export const GATED = 'EngineGated';

type LinearInputs = { x: tf.TensorInfo; w: tf.TensorInfo; bias?: tf.TensorInfo; residual?: tf.TensorInfo };

function linearKernel(args: { inputs: LinearInputs; backend: unknown }): tf.TensorInfo {
  const { x, w, bias, residual } = args.inputs;
  const { be, k } = engineModule(args.backend, LINEAR);
  // The backend's product (the engine's GEMM or XNNPACK, as a BatchMatMul would take), then the
  // sums in place on its fresh output: the bias, then the residual, each rounded as Add rounds it.
  const matMul = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
  const out = matMul({ inputs: { a: x, b: w }, backend: be, attrs: { transposeA: false, transposeB: false } } as never) as tf.TensorInfo;
  const [M, N] = out.shape;
  if (bias) k.add_rows(offset(be, out), offset(be, bias), M, N);
  if (residual) k.add_rows(offset(be, out), offset(be, residual), 1, M * N);
  return out;
}

/**
 * A linear layer where no gradient tape records: residual + (x @ w + bias) (bias and residual
 * optional) as one kernel on wasm, the product as BatchMatMul computes it and each sum rounded as
 * the Add it replaces (the same values bit for bit). Undefined where it does not serve or a tape
 * records (the caller runs matMul and Adds).
 */
export function linearNoGrad(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor, residual?: tf.Tensor2D): tf.Tensor2D | undefined {
  if (!onWasmModule() || !fusedOn || recording() || x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[0]) return undefined;
  const [M] = x.shape, N = w.shape[1];
  if ([x, w, bias, residual].some((t) => t && t.dtype !== 'float32')) return undefined;
  if (bias && (bias.rank !== 1 || bias.size !== N)) return undefined;
  if (residual && (residual.shape[0] !== M || residual.shape[1] !== N)) return undefined;
  const inputs: Record<string, tf.Tensor> = { x, w };
  if (bias) inputs.bias = bias;
  if (residual) inputs.residual = residual;
  return tf.engine().runKernel(LINEAR, inputs) as tf.Tensor2D;
}

function gatedKernel(args: { inputs: { g: tf.TensorInfo; s: tf.TensorInfo; u: tf.TensorInfo }; backend: unknown }): tf.TensorInfo {
  const { g, s, u } = args.inputs;
  const { be, k } = engineModule(args.backend, GATED);
  const out = be.makeOutput(g.shape, 'float32');
  k.gated(offset(be, g), offset(be, s), offset(be, u), offset(be, out), size(g.shape));
  return out;
}

/**
 * SwiGLU's silu(gate) * up where no gradient tape records: the backend's Sigmoid, then
 * (gate * sigmoid) * up as one kernel on wasm with the two Muls' roundings (the same values bit for
 * bit as ops.ts `swiGlu`). Undefined where it does not serve or a tape records.
 */
export function swiGluNoGrad(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D | undefined {
  if (!onWasmModule() || !fusedOn || recording() || gate.dtype !== 'float32' || up.dtype !== 'float32' || !tf.util.arraysEqual(gate.shape, up.shape)) return undefined;
  const s = tf.sigmoid(gate);
  const out = tf.engine().runKernel(GATED, { g: gate, s, u: up }) as tf.Tensor2D;
  s.dispose();
  return out;
}

let fusedOn = true;

/** Turns the fused linear and SwiGLU kernels off (matMul, Adds and Muls) or back on; for comparisons in tests and benchmarks. */
export function setFusedKernels(on: boolean): void {
  fusedOn = on;
}

/** Turns the RMSNorm kernel off (the general path everywhere) or back on; for comparisons in tests and benchmarks. */
export function setRmsNormKernel(on: boolean): void {
  rmsNormOn = on;
}

/** Turns the rotary kernel off (the general path everywhere) or back on; for comparisons in tests and benchmarks. */
export function setRopeKernel(on: boolean): void {
  ropeOn = on;
}

let registered = false;
const ours = new WeakSet<tf.KernelFunc>();

/** Whether the wasm backend's Concat, GatherV2 and Slice are the copies here, and ShiftedExp is registered. */
export function wasmKernelsInPlace(): boolean {
  return tf.getKernel(SHIFTED_EXP, 'wasm') !== undefined && ['Concat', 'GatherV2', 'Slice'].every((name) => {
    const k = tf.getKernel(name, 'wasm');
    return k !== undefined && ours.has(k.kernelFunc);
  });
}

/**
 * Puts the copies in place of the wasm backend's Concat, GatherV2 and Slice, and the engine's GEMM
 * (engine/wasm-gemm.ts) in place of its BatchMatMul, and registers ShiftedExp and EngineRope (once; call after
 * tfjs-backend-wasm is imported). The backend's kernels stay as the fallback.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  for (const [name, make] of [['Concat', fastConcat], ['GatherV2', fastGather], ['Slice', fastSlice], ['BatchMatMul', fastMatMul]] as const) {
    const own = tf.getKernel(name, 'wasm');
    if (!own) continue;
    const kernelFunc = make(own.kernelFunc);
    ours.add(kernelFunc);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...own, kernelFunc });
  }
  tf.registerKernel({ kernelName: SHIFTED_EXP, backendName: 'wasm', kernelFunc: shiftedExpKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: ROPE, backendName: 'wasm', kernelFunc: ropeKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: RMS_NORM, backendName: 'wasm', kernelFunc: rmsNormKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: LINEAR, backendName: 'wasm', kernelFunc: linearKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: GATED, backendName: 'wasm', kernelFunc: gatedKernel as unknown as tf.KernelFunc });
  registered = true;
}
