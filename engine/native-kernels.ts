/**
 * Leaner versions of a few tfjs-node kernels for the tensorflow backend, where every kernel is a
 * call into TensorFlow's eager runtime:
 *  - tfjs-node's Reshape, Transpose, Sum, Max, Mean and Slice turn their shape, permutation,
 *    axes or bounds into a new int32 tensor on every call (a tfjs tensor, then a TensorFlow handle,
 *    both disposed after the call). These run the same TensorFlow ops on the same inputs, so the
 *    results are the same, but take those int32 inputs from a bounded cache of TensorFlow handles
 *    kept beside the backend: no tfjs tensors are made for them (tf.memory() does not count them);
 *  - its Mean casts a float32 input to float32 first (one more call); here it does not;
 *  - a Reshape to the shape the tensor has, or a Cast to its dtype, returns the input's data
 *    without calling TensorFlow, as the other backends do.
 * Inputs the fast paths do not take (dtypes other than float32, int32 and bool) go to tfjs-node's
 * own kernels. engine/backend.ts registers them when it loads tfjs-node, in every thread.
 */
import * as tf from './tf.ts';

/** What the kernels use of tfjs-node's NodeJSKernelBackend and its binding (not exported as types). */
interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}
interface NativeBinding {
  executeOp(name: string, attrs: OpAttr[], inputIds: number[], outputs: number): TensorMetadata[];
  createTensor(shape: number[], dtype: number, values: Int32Array): number;
  deleteTensor(id: number): void;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_BOOL: number;
}
interface OpAttr {
  name: string;
  type: number;
  value: number | boolean;
}
interface NativeBackend {
  binding: NativeBinding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(meta: TensorMetadata): tf.Tensor;
}

/** At most this many cached int32 handles (shapes, permutations, axes); the oldest go first. */
export const CONSTANT_CACHE_SIZE = 512;

/** Cached int32 handles for one backend instance, by their values. */
class Constants {
  private readonly handles = new Map<string, number>();
  constructor(private readonly binding: NativeBinding) {}

  /** A TensorFlow handle holding `values` as a 1-D int32 tensor. */
  get(values: readonly number[]): number {
    const key = values.join(',');
    let id = this.handles.get(key);
    if (id !== undefined) return id;
    if (this.handles.size >= CONSTANT_CACHE_SIZE) {
      const [oldKey, oldId] = this.handles.entries().next().value as [string, number];
      this.handles.delete(oldKey);
      this.binding.deleteTensor(oldId);
    }
    id = this.binding.createTensor([values.length], this.binding.TF_INT32, Int32Array.from(values));
    this.handles.set(key, id);
    return id;
  }

  get size(): number {
    return this.handles.size;
  }
}

let state: { backend: NativeBackend; constants: Constants } | undefined;

function constantsFor(backend: NativeBackend): Constants {
  if (state?.backend !== backend) state = { backend, constants: new Constants(backend.binding) };
  return state.constants;
}

/** How many int32 handles the cache holds now (for tests). */
export function cachedConstantCount(): number {
  return state?.constants.size ?? 0;
}

/** Runs a TensorFlow op on tensors followed by cached int32 handles; one output. */
function run(backend: NativeBackend, op: string, attrs: OpAttr[], tensors: tf.TensorInfo[], constants: number[]): tf.Tensor {
  const ids = backend.getInputTensorIds(tensors);
  for (const c of constants) ids.push(c);
  return backend.createOutputTensor(backend.binding.executeOp(op, attrs, ids, 1)[0]);
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
/** A kernel's fast path; undefined hands the call to tfjs-node's own kernel. */
type Fast = (backend: NativeBackend, args: KernelArgs) => tf.TensorInfo | undefined;

/** The TensorFlow type code of x's dtype when the fast paths take it (float32, int32, bool). */
function codeOf(backend: NativeBackend, x: tf.TensorInfo): number | undefined {
  const b = backend.binding;
  if (x.dtype === 'float32') return b.TF_FLOAT;
  if (x.dtype === 'int32') return b.TF_INT32;
  if (x.dtype === 'bool') return b.TF_BOOL;
  return undefined;
}

/** x itself as the output (the backend counts one more reference to its data): what Identity does. */
function same(backend: NativeBackend, x: tf.TensorInfo): tf.TensorInfo {
  (backend as unknown as tf.KernelBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function typeAttr(b: NativeBinding, name: string, value: number): OpAttr {
  return { name, type: b.TF_ATTR_TYPE, value };
}

/** A reduction over int32 axes (Sum, Mean, Max); Mean only for float32 (tfjs-node casts other inputs). */
function reduction(op: string, axisAttr: 'axis' | 'reductionIndices', floatOnly = false): Fast {
  return (backend, { inputs, attrs }) => {
    const x = inputs.x as tf.TensorInfo, code = codeOf(backend, x), b = backend.binding;
    if (code === undefined || (floatOnly && code !== b.TF_FLOAT)) return undefined;
    const axes = tf.util.parseAxisParam(attrs![axisAttr] as number | number[], x.shape);
    const opAttrs = [{ name: 'keep_dims', type: b.TF_ATTR_BOOL, value: Boolean(attrs!.keepDims) }, typeAttr(b, 'T', code), typeAttr(b, 'Tidx', b.TF_INT32)];
    return run(backend, op, opAttrs, [x], [constantsFor(backend).get(axes)]);
  };
}

const FAST: Record<string, Fast> = {
  // A reshape to the same shape returns its input, as on the other backends.
  Reshape: (backend, { inputs, attrs }) => {
    const x = inputs.x as tf.TensorInfo, code = codeOf(backend, x), size = tf.util.sizeFromShape(x.shape);
    if (code === undefined || size === 0) return undefined;
    const shape = tf.util.inferFromImplicitShape(attrs!.shape as number[], size);
    if (tf.util.arraysEqual(shape, x.shape)) return same(backend, x);
    const b = backend.binding;
    return run(backend, 'Reshape', [typeAttr(b, 'T', code), typeAttr(b, 'Tshape', b.TF_INT32)], [x], [constantsFor(backend).get(shape)]);
  },
  // A cast to the dtype the tensor has returns its input, as on the other backends.
  Cast: (backend, { inputs, attrs }) => {
    const x = inputs.x as tf.TensorInfo;
    return x.dtype === attrs!.dtype ? same(backend, x) : undefined;
  },
  Transpose: (backend, { inputs, attrs }) => {
    const x = inputs.x as tf.TensorInfo, code = codeOf(backend, x), b = backend.binding;
    if (code === undefined) return undefined;
    return run(backend, 'Transpose', [typeAttr(b, 'T', code), typeAttr(b, 'Tperm', b.TF_INT32)], [x], [constantsFor(backend).get(attrs!.perm as number[])]);
  },
  Sum: reduction('Sum', 'axis'),
  Max: reduction('Max', 'reductionIndices'),
  // tfjs-node's Mean casts its input to float32 first (a Cast call even for float32).
  Mean: reduction('Mean', 'axis', true),
  Slice: (backend, { inputs, attrs }) => {
    const x = inputs.x as tf.TensorInfo, code = codeOf(backend, x), b = backend.binding;
    if (code === undefined) return undefined;
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs!.begin as number | number[], attrs!.size as number | number[]);
    const c = constantsFor(backend);
    return run(backend, 'Slice', [typeAttr(b, 'T', code), typeAttr(b, 'Index', b.TF_INT32)], [x], [c.get(begin), c.get(size)]);
  },
};

/** The kernels `registerNativeKernels` replaces, by name. */
export const NATIVE_KERNEL_NAMES = Object.keys(FAST);

/** tfjs-node's own kernels, by name, where `registerNativeKernels` replaced them. */
const replaced = new Map<string, tf.KernelConfig>();

/**
 * Replaces tfjs-node's kernels named in NATIVE_KERNEL_NAMES for the "tensorflow" backend (in the
 * calling thread, after tfjs-node registered its own; again it does nothing). Inputs the fast path does not take go to the
 * original kernel.
 */
export function registerNativeKernels(): void {
  for (const name of NATIVE_KERNEL_NAMES) {
    if (replaced.has(name)) continue;
    const original = tf.getKernel(name, 'tensorflow');
    if (!original) continue;
    const fast = FAST[name];
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => fast(args.backend as NativeBackend, args as KernelArgs) ?? original.kernelFunc(args),
    });
    replaced.set(name, original);
  }
}

/** Puts tfjs-node's own kernels back (for comparisons); `registerNativeKernels` replaces them again. */
export function unregisterNativeKernels(): void {
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel(original);
  }
  replaced.clear();
}
