/** Rotary position embeddings: inverse frequencies (with Llama 3 scaling) and cos/sin tables. */
import type { ModelConfig } from './config.ts';

/** inv_freq[j] = 1 / theta^(2j/d), j < d/2, in float32 like the reference implementation. */
export function inverseFrequencies(c: ModelConfig): Float32Array {
  const d = c.head_dim;
  const inv = new Float32Array(d / 2);
  for (let j = 0; j < d / 2; j++) inv[j] = 1 / Math.pow(c.rope_theta, Math.fround((2 * j) / d));
  const s = c.rope_scaling;
  if (s && s.rope_type === 'llama3') {
    const factor = s.factor ?? 8, low = s.low_freq_factor ?? 1, high = s.high_freq_factor ?? 4;
    const oldLen = s.original_max_position_embeddings ?? 8192;
    const lowWave = oldLen / low, highWave = oldLen / high;
    for (let j = 0; j < inv.length; j++) {
      const wave = (2 * Math.PI) / inv[j];
      if (wave > lowWave) inv[j] = inv[j] / factor;
      else if (wave >= highWave) {
        const smooth = (oldLen / wave - low) / (high - low);
        inv[j] = (1 - smooth) * (inv[j] / factor) + smooth * inv[j];
      }
    }
  }
  return inv;
}

/**
 * cos and sin of position * inv_freq for each position, laid out [N, d] (the d/2 angles twice).
 * A position seen before in the list (every row of a batch repeats them) copies its first row.
 */
export function ropeTables(positions: ArrayLike<number>, inv: Float32Array): { cos: Float32Array; sin: Float32Array } {
  const half = inv.length, d = 2 * half, n = positions.length;
  const cos = new Float32Array(n * d), sin = new Float32Array(n * d);
  const first = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const p = positions[i];
    const seen = first.get(p);
    if (seen !== undefined) {
      cos.copyWithin(i * d, seen * d, seen * d + d);
      sin.copyWithin(i * d, seen * d, seen * d + d);
      continue;
    }
    first.set(p, i);
    for (let j = 0; j < half; j++) {
      const a = Math.fround(p * inv[j]);
      const c = Math.cos(a), s = Math.sin(a);
      cos[i * d + j] = c; cos[i * d + j + half] = c;
      sin[i * d + j] = s; sin[i * d + j + half] = s;
    }
  }
  return { cos, sin };
}
