/**
 * AdamW with decoupled weight decay, as in PyTorch's torch.optim.AdamW:
 *   p <- p * (1 - lr * wd)                      (only for matrices: norms and biases are not decayed)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * All parameters are updated together, in one flat buffer: the moments live flat, the decayed
 * parameters first, and the update is a dozen element-wise kernels whatever the parameter count
 * (per parameter it was a dozen each, and on a native backend every kernel is a call into its
 * runtime). Each element's arithmetic is the same as a per-parameter update, so the results are.
 * The optimizer keeps the flat copy of the parameters it last wrote and gathers them again only
 * when one was assigned from outside (a checkpoint load, setWeights).
 * The flat vector ends in zeros up to a multiple of FLAT_CHUNK elements, so that its squared norm
 * is summed in two stages (per chunk, then the chunks: `flatSquaredNorm`), as accurate as per
 * parameter sums or better, in four kernels.
 * Its state (step and both moments) saves to and loads from a safetensors file exactly, one
 * entry per parameter.
 */
import * as tf from './tf.ts';
import { openSafetensors, writeSafetensors } from './safetensors.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** Weight decay applies to matrices (linear layers, embeddings), never to 1-D norms and biases. */
export function isDecayed(name: string, shape: number[]): boolean {
  return shape.length >= 2 && !name.endsWith('.bias') && !name.endsWith('norm.weight');
}

/** The flat layout's length is a multiple of this (see `flatSquaredNorm`). */
export const FLAT_CHUNK = 1024;

/** Sum of squares of a flat vector whose length is a multiple of FLAT_CHUNK, per chunk and then over the chunks. */
export function flatSquaredNorm(flat: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    if (flat.size % FLAT_CHUNK !== 0) return tf.sum(tf.square(flat));
    return tf.sum(tf.sum(tf.reshape(tf.square(flat), [flat.size / FLAT_CHUNK, FLAT_CHUNK]), 1));
  });
}

/** t as a vector of its `size` elements; a vector as it is (a reshape is a kernel call on tfjs-node). */
function flat1d(t: tf.Tensor, size: number): tf.Tensor {
  return t.rank === 1 ? t : tf.reshape(t, [size]);
}

/** Where one parameter sits in the flat layout. */
export interface Slot {
  name: string;
  variable: tf.Variable;
  shape: number[];
  offset: number;
  size: number;
}

/**
 * The flat layout of a model's parameters, shared by the optimizer and by data-parallel
 * replicas (engine/parallel-train.ts), which must agree on it element for element: decayed
 * parameters first, then the others (each group in the map's order), then `pad` zeros up to a
 * multiple of FLAT_CHUNK.
 */
export class FlatLayout {
  readonly slots: Slot[];
  readonly total: number;
  readonly pad: number;
  /** Elements [0, decayedSize) are the decayed parameters. */
  readonly decayedSize: number;

  constructor(params: Map<string, tf.Variable>) {
    const entries = [...params];
    const ordered = [...entries.filter(([n, p]) => isDecayed(n, p.shape)), ...entries.filter(([n, p]) => !isDecayed(n, p.shape))];
    let offset = 0;
    this.slots = ordered.map(([name, variable]) => {
      const slot = { name, variable, shape: variable.shape, offset, size: variable.size };
      offset += variable.size;
      return slot;
    });
    this.pad = offset === 0 ? 0 : (FLAT_CHUNK - (offset % FLAT_CHUNK)) % FLAT_CHUNK;
    this.total = offset + this.pad;
    this.decayedSize = this.slots.filter((s) => isDecayed(s.name, s.shape)).reduce((n, s) => n + s.size, 0);
  }

  /**
   * Gradients by parameter name as one flat vector in this layout (a missing one counts as
   * zero); `present` says, per slot, whether it had one.
   */
  flatten(grads: Map<string, tf.Tensor>): { flat: tf.Tensor1D; present: boolean[] } {
    const present = this.slots.map((s) => grads.has(s.name));
    const flat = tf.tidy(() => {
      const parts = this.slots.map((s) => {
        const g = grads.get(s.name);
        if (g && g.shape.join(',') !== s.shape.join(',')) throw new Error(`AdamW: gradient of "${s.name}" has shape [${g.shape}], expected [${s.shape}]`);
        return g ? flat1d(g, s.size) : tf.zeros([s.size]);
      });
      return this.join(parts);
    });
    return { flat, present };
  }

  /** Per-parameter pieces (in slot order) as one flat vector, with the padding. */
  join(parts: tf.Tensor[]): tf.Tensor1D {
    const all = this.pad > 0 ? [...parts, tf.zeros([this.pad])] : parts;
    return (all.length === 1 ? all[0].clone() : tf.concat(all)) as tf.Tensor1D;
  }

  /** The variables' current values, flat. */
  gather(): tf.Tensor1D {
    return tf.tidy(() => this.join(this.slots.map((s) => flat1d(s.variable, s.size))));
  }

  /** Assigns every variable its piece of a flat vector in this layout. */
  scatter(flat: tf.Tensor1D): void {
    tf.tidy(() => {
      const sizes = this.slots.map((s) => s.size);
      if (this.pad > 0) sizes.push(this.pad);
      const parts = sizes.length === 1 ? [flat] : tf.split(flat, sizes);
      this.slots.forEach((s, i) => s.variable.assign(s.shape.length === 1 ? parts[i] : tf.reshape(parts[i], s.shape)));
    });
  }
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates applied so far. */
  step = 0;
  private readonly params: Map<string, tf.Variable>;
  readonly layout: FlatLayout;
  /** Flat layout: decayed parameters first (elements [0, decayedSize)), then the others, then `pad` zeros. */
  private readonly slots: Slot[];
  private readonly bySlotName: Map<string, Slot>;
  private readonly total: number;
  private readonly decayedSize: number;
  private readonly pad: number;
  private readonly m: tf.Variable;
  private readonly v: tf.Variable;
  /** The parameters as the optimizer last wrote them, flat, and the data each variable then held. */
  private flat?: { t: tf.Tensor1D; ids: tf.DataId[] };

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.params = params;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.layout = new FlatLayout(params);
    this.slots = this.layout.slots;
    this.bySlotName = new Map(this.slots.map((s) => [s.name, s]));
    this.pad = this.layout.pad;
    this.total = this.layout.total;
    this.decayedSize = this.layout.decayedSize;
    this.m = tf.variable(tf.zeros([this.total]), false);
    this.v = tf.variable(tf.zeros([this.total]), false);
  }

  /** Names of the parameters that get weight decay. */
  decayedNames(): string[] {
    return [...this.params].filter(([n, p]) => isDecayed(n, p.shape)).map(([n]) => n);
  }

  /** Length of `flatten`'s vector: every parameter's elements, then zeros up to a multiple of FLAT_CHUNK. */
  get size(): number {
    return this.total;
  }

  /**
   * Gradients by parameter name as one flat vector in the optimizer's layout (a missing one
   * counts as zero); `present` says whether every parameter had one.
   */
  flatten(grads: Map<string, tf.Tensor>): { flat: tf.Tensor1D; present: boolean[] } {
    return this.layout.flatten(grads);
  }

  /** One update with learning rate lr; grads by parameter name (missing ones are skipped). */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    const { flat, present } = this.flatten(grads);
    try {
      this.applyFlat(flat, lr, present);
    } finally {
      flat.dispose();
    }
  }

  /**
   * One update from a flat gradient in this optimizer's layout (see `flatten`); parameters whose
   * `present` entry is false keep their values and moments.
   */
  applyFlat(grad: tf.Tensor1D, lr: number, present?: boolean[]): void {
    if (grad.size !== this.total) throw new Error(`AdamW: flat gradient has ${grad.size} elements, expected ${this.total}`);
    if (this.total === 0) return;
    this.step += 1;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    const p = this.current();
    const next = tf.tidy(() => {
      const g = grad;
      let m1 = tf.add(tf.mul(this.m, this.beta1), tf.mul(g, 1 - this.beta1));
      let v1 = tf.add(tf.mul(this.v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
      const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), this.eps);
      let decayed: tf.Tensor = p;
      const nd = this.decayedSize;
      if (this.weightDecay > 0 && nd > 0) {
        const factor = 1 - lr * this.weightDecay;
        decayed = nd === this.total
          ? tf.mul(p, factor)
          : tf.concat([tf.mul(tf.slice(p, 0, nd), factor), tf.slice(p, nd, this.total - nd)]);
      }
      let p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1));
      if (present && present.some((x) => !x)) {
        const keep = new Uint8Array(this.total);
        this.slots.forEach((s, i) => { if (present[i]) keep.fill(1, s.offset, s.offset + s.size); });
        const mask = tf.tensor1d(keep, 'bool');
        m1 = tf.where(mask, m1, this.m);
        v1 = tf.where(mask, v1, this.v);
        p1 = tf.where(mask, p1, p);
      }
      this.m.assign(m1 as tf.Tensor1D);
      this.v.assign(v1 as tf.Tensor1D);
      this.layout.scatter(p1 as tf.Tensor1D);
      return p1 as tf.Tensor1D;
    });
    this.flat?.t.dispose();
    this.flat = { t: next, ids: this.slots.map((s) => s.variable.dataId) };
  }

  /**
   * The parameters flat, in `layout`: the copy last written, unless a variable was assigned since.
   * The tensor stays the optimizer's: do not dispose it.
   */
  current(): tf.Tensor1D {
    if (this.flat && this.slots.every((s, i) => s.variable.dataId === this.flat!.ids[i])) return this.flat.t;
    this.flat?.t.dispose();
    const t = this.layout.gather();
    this.flat = { t, ids: this.slots.map((s) => s.variable.dataId) };
    return t;
  }

  /** Writes step, hyper-parameters and both moments (in the model's internal layout). */
  save(path: string): void {
    const m = this.m.dataSync() as Float32Array, v = this.v.dataSync() as Float32Array;
    const tensors = [];
    for (const name of this.params.keys()) {
      const s = this.bySlotName.get(name)!;
      tensors.push({ name: `${name}.exp_avg`, shape: s.shape, data: m.subarray(s.offset, s.offset + s.size) });
      tensors.push({ name: `${name}.exp_avg_sq`, shape: s.shape, data: v.subarray(s.offset, s.offset + s.size) });
    }
    writeSafetensors(path, tensors, {
      metadata: {
        optimizer: 'adamw', step: String(this.step), beta1: String(this.beta1), beta2: String(this.beta2),
        eps: String(this.eps), weight_decay: String(this.weightDecay),
      },
    });
  }

  /** Restores the state written by `save`; every parameter must be present with its shape. */
  load(path: string): void {
    const f = openSafetensors(path);
    try {
      if (f.metadata.optimizer !== 'adamw') throw new Error(`${path}: not an AdamW state file (metadata optimizer=${f.metadata.optimizer})`);
      const m = new Float32Array(this.total), v = new Float32Array(this.total);
      for (const s of this.slots) {
        for (const [suffix, store] of [['exp_avg', m], ['exp_avg_sq', v]] as const) {
          const key = `${s.name}.${suffix}`;
          const e = f.tensors.get(key);
          if (!e) throw new Error(`${path}: missing "${key}" (the state belongs to a different model)`);
          if (e.shape.join(',') !== s.shape.join(',')) throw new Error(`${path}: "${key}" has shape [${e.shape}], expected [${s.shape}]`);
          store.set(f.read(key), s.offset);
        }
      }
      tf.tidy(() => {
        this.m.assign(tf.tensor1d(m));
        this.v.assign(tf.tensor1d(v));
      });
      this.step = Number(f.metadata.step);
    } finally {
      f.close();
    }
  }

  dispose(): void {
    this.m.dispose();
    this.v.dispose();
    this.flat?.t.dispose();
    this.flat = undefined;
  }
}
