/**
 * AdamW with decoupled weight decay, as in PyTorch's torch.optim.AdamW:
 *   p <- p * (1 - lr * wd)                      (only for matrices: norms and biases are not decayed)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Its state (step and both moments) saves to and loads from a safetensors file exactly.
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

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates applied so far. */
  step = 0;
  private readonly params: Map<string, tf.Variable>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.params = params;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Names of the parameters that get weight decay. */
  decayedNames(): string[] {
    return [...this.params].filter(([n, p]) => isDecayed(n, p.shape)).map(([n]) => n);
  }

  /** One update with learning rate lr; grads by parameter name (missing ones are skipped). */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) continue;
      const m = this.m.get(name)!, v = this.v.get(name)!;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), this.eps);
        const decayed = isDecayed(name, p.shape) && this.weightDecay > 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1)));
        m.assign(m1);
        v.assign(v1);
      });
    }
  }

  /** Writes step, hyper-parameters and both moments (in the model's internal layout). */
  save(path: string): void {
    const tensors = [];
    for (const [name, m] of this.m) {
      tensors.push({ name: `${name}.exp_avg`, shape: m.shape, data: m.dataSync() as Float32Array });
      const v = this.v.get(name)!;
      tensors.push({ name: `${name}.exp_avg_sq`, shape: v.shape, data: v.dataSync() as Float32Array });
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
      for (const [name, p] of this.params) {
        for (const [suffix, store] of [['exp_avg', this.m], ['exp_avg_sq', this.v]] as const) {
          const key = `${name}.${suffix}`;
          const e = f.tensors.get(key);
          if (!e) throw new Error(`${path}: missing "${key}" (the state belongs to a different model)`);
          if (e.shape.join(',') !== p.shape.join(',')) throw new Error(`${path}: "${key}" has shape [${e.shape}], expected [${p.shape}]`);
          const data = f.read(key);
          tf.tidy(() => store.get(name)!.assign(tf.tensor(data, p.shape)));
        }
      }
      this.step = Number(f.metadata.step);
    } finally {
      f.close();
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
