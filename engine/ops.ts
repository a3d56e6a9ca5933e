/**
 * The few building blocks whose gradients are written by hand, because the automatic
 * ones are slow or missing on the WebAssembly backend:
 *  - there only a plain 2-D matMul (no transpose flags, no batch dimension) takes the fast
 *    XNNPACK path, so linear layers transpose explicitly and use plain 2-D matMuls both ways;
 *  - tf.gather's gradient needs UnsortedSegmentSum, which wasm lacks, so the embedding
 *    gradient is a scatter-add done on the host (on tfjs-node, that kernel).
 */
import * as tf from './tf.ts';

type GradResult = { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/** Whether a gradient tape records the ops run now (inside tf.grads, tf.variableGrads and the like). */
export function recording(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * tf.customGrad with plain tensor arguments (the last one, `save`, only where needed). Where no tape
 * records (generation, scoring), the forward runs as it is, without the custom gradient's
 * bookkeeping (a scope, saved tensors, a recorded node), which at these sizes cost more than the
 * kernels: the same kernels in the same order, so the same values bit for bit.
 */
function custom<A extends unknown[]>(f: (...args: A) => GradResult): (...inputs: tf.Tensor[]) => tf.Tensor {
  const withGradient = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);
  const noSave: tf.GradSaveFunc = () => {};
  return (...inputs) => recording()
    ? withGradient(...inputs)
    : tf.tidy(() => (f as unknown as (...args: unknown[]) => GradResult)(...inputs, noSave).value);
}

/**
 * Whether matMul's transpose flags cost nothing extra: on the tensorflow backend (tfjs-node) a
 * product with flags is one BatchMatMulV2 call, where an explicit transpose is another call into
 * TensorFlow. On wasm only the plain product takes XNNPACK's fast path, so there the engine
 * transposes explicitly.
 */
export function transposeFlagsFree(): boolean {
  return tf.getBackend() === 'tensorflow';
}

/**
 * y = x @ w for x [N, in] and w [in, out]; the gradients are plain 2-D matMuls with explicit
 * transposes, or with transpose flags where those are free (`transposeFlagsFree`).
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        if (transposeFlagsFree()) return [tf.matMul(d, sw, false, true), tf.matMul(sx, d, true, false)];
        return [tf.matMul(d, tf.transpose(sw)), tf.matMul(tf.transpose(sx), d)];
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/**
 * y = x @ wᵀ for x [N, in] and w [out, in] (a tied output head on the embedding), by transpose
 * flags: dx = dy @ w, dw = dyᵀ @ x. For backends where the flags are free (`transposeFlagsFree`).
 */
export function linearTransposed(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D, false, true),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        return [tf.matMul(d, sw), tf.matMul(d, sx, true, false)];
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/** y = x @ m for a constant m [k, k] whose transpose mT is given; only x gets a gradient. */
export function matMulConst(x: tf.Tensor2D, m: tf.Tensor2D, mT: tf.Tensor2D): tf.Tensor2D {
  const f = custom((xx: tf.Tensor) => ({
    value: tf.matMul(xx as tf.Tensor2D, m),
    gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, mT),
  }));
  return f(x) as tf.Tensor2D;
}

/** Rows of table [V, C] picked by ids (int32, any shape, N values): [N, C]. */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor2D {
  const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
  // Without a tape, the gather alone: the ids are read back to the host only for the gradient.
  if (!recording()) return tf.gather(table, flat) as tf.Tensor2D;
  const idx = Int32Array.from(flat.dataSync());
  const [V, C] = table.shape;
  const f = custom((t: tf.Tensor) => ({
    value: tf.gather(t, flat),
    gradFunc: (dy: tf.Tensor) => {
      // tfjs-node has the kernel (one call, no copies through JavaScript); it adds the rows in the same order.
      if (tf.getBackend() === 'tensorflow') return tf.unsortedSegmentSum(dy, tf.tensor1d(idx, 'int32'), V);
      const g = dy.dataSync() as Float32Array;
      const out = new Float32Array(V * C);
      for (let n = 0; n < idx.length; n++) {
        const row = idx[n] * C, src = n * C;
        for (let c = 0; c < C; c++) out[row + c] += g[src + c];
      }
      return tf.tensor2d(out, [V, C]);
    },
  }));
  return f(table) as tf.Tensor2D;
}

/**
 * rotate_half as a matrix: for x of even size d, x @ R = concat(-x[d/2:], x[:d/2]).
 * Returns R and its transpose (for the gradient).
 */
export function rotateHalfMatrices(d: number): { R: tf.Tensor2D; RT: tf.Tensor2D } {
  const half = d / 2;
  const r = new Float32Array(d * d);
  for (let j = 0; j < half; j++) {
    r[(j + half) * d + j] = -1; // out[j] = -x[j + half]
    r[j * d + (j + half)] = 1; //  out[j + half] = x[j]
  }
  const R = tf.tensor2d(r, [d, d]);
  return { R, RT: tf.transpose(R) };
}

/**
 * RMSNorm of the rows of x [N, C] with weight w [C]: x * rsqrt(mean(x^2) + eps) * w, as one
 * op with a hand-written gradient (far fewer kernels and saved copies than the automatic one):
 * with r the row's rsqrt, xh = x * r and g = dy * w,
 *   dx = r * (g - xh * mean(g * xh)),   dw = sum over rows of dy * xh.
 */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), eps));
    const xh = tf.mul(xx, r);
    save([xh, r, ww]);
    return {
      value: tf.mul(xh, ww),
      gradFunc: (dy: tf.Tensor, [sxh, sr, sw]: tf.Tensor[]) => {
        const g = tf.mul(dy, sw);
        const dx = tf.mul(tf.sub(g, tf.mul(sxh, tf.mean(tf.mul(g, sxh), -1, true))), sr);
        return [dx, tf.sum(tf.mul(dy, sxh), 0)];
      },
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/**
 * SwiGLU's gating, silu(gate) * up, as one op with a hand-written gradient: with s = sigmoid(gate),
 *   d up = dy * gate * s,   d gate = dy * up * s * (1 + gate * (1 - s)).
 */
export function swiGlu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  const f = custom((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
    const s = tf.sigmoid(g);
    const silu = tf.mul(g, s);
    save([g, u, s, silu]);
    return {
      value: tf.mul(silu, u),
      gradFunc: (dy: tf.Tensor, [sg, su, ss, ssilu]: tf.Tensor[]) => {
        const dyS = tf.mul(dy, ss);
        // 1 + gate * (1 - s) = 1 + gate - silu
        return [tf.mul(tf.mul(dyS, su), tf.add(tf.sub(sg, ssilu), 1)), tf.mul(dy, ssilu)];
      },
    };
  });
  return f(gate, up) as tf.Tensor2D;
}
