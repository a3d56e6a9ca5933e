/** Small configurations and helpers shared by the engine tests. */
import { parseConfig, type ModelConfig } from '../../engine/config.ts';

export function tinyConfig(overrides: Record<string, unknown> = {}): ModelConfig {
  return parseConfig({
    model_type: 'qwen2',
    vocab_size: 64,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 128,
    tie_word_embeddings: true,
    initializer_range: 0.1,
    ...overrides,
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
