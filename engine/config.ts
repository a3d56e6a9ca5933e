/**
 * The Llama / Qwen2 decoder configuration, read from a Hugging Face config.json, plus
 * parameter counts and memory estimates. Field names are the Hugging Face ones, so a
 * config round-trips through config.json unchanged (unknown fields are kept in `extra`).
 */
import { join } from 'node:path';
import { readJsonFile } from '../common/fs.ts';

export type ModelType = 'llama' | 'qwen2';

export interface RopeScaling {
  rope_type: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface ModelConfig {
  model_type: ModelType;
  architectures: string[];
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** Bias on q/k/v (Qwen2 always; Llama when attention_bias). */
  qkv_bias: boolean;
  /** Bias on o_proj (Llama attention_bias only). */
  o_bias: boolean;
  mlp_bias: boolean;
  initializer_range: number;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  pad_token_id?: number;
  /** Every other field of the original config.json, written back as is. */
  extra: Record<string, unknown>;
}

const ARCH: Record<ModelType, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM' };

/** Builds a config from config.json's object; `where` names the file in error messages. */
export function parseConfig(json: unknown, where = 'config.json'): ModelConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: expected a JSON object`);
  const j = { ...(json as Record<string, unknown>) };
  const modelType = j.model_type;
  if (modelType !== 'llama' && modelType !== 'qwen2') {
    throw new Error(`${where}: model_type ${JSON.stringify(modelType)} is not supported: use "llama" or "qwen2" (Llama / Qwen2 decoder family)`);
  }
  const int = (key: string, fallback?: number): number => {
    const v = j[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(j[key])}`);
    }
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = j[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: "${key}" must be a positive number, got ${JSON.stringify(j[key])}`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = j[key] ?? fallback;
    if (typeof v !== 'boolean') throw new Error(`${where}: "${key}" must be true or false, got ${JSON.stringify(j[key])}`);
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw new Error(`${where}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`);
  }
  if (j.head_dim === undefined && hidden % heads !== 0) {
    throw new Error(`${where}: hidden_size (${hidden}) must be divisible by num_attention_heads (${heads}), or give head_dim`);
  }
  const headDim = int('head_dim', Math.floor(hidden / heads));
  if (headDim % 2 !== 0) throw new Error(`${where}: head_dim (${headDim}) must be even for rotary embeddings`);
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`${where}: hidden_act "${String(act)}" is not supported: only "silu" (SwiGLU)`);
  // Newer transformers versions nest rope_theta (and the scaling type) in "rope_parameters".
  const rp = j.rope_parameters as Record<string, unknown> | undefined;
  if (rp && typeof rp === 'object') {
    if (j.rope_theta === undefined && rp.rope_theta !== undefined) j.rope_theta = rp.rope_theta;
    if (j.rope_scaling === undefined && rp.rope_type !== undefined && rp.rope_type !== 'default') j.rope_scaling = rp;
  }
  const rs = j.rope_scaling;
  let ropeScaling: RopeScaling | null = null;
  if (rs !== undefined && rs !== null) {
    const r = rs as Record<string, unknown>;
    const type = (r.rope_type ?? r.type) as string;
    if (type !== 'llama3' && type !== 'default') {
      throw new Error(`${where}: rope_scaling type "${String(type)}" is not supported: only "llama3" (or none)`);
    }
    ropeScaling = { ...(r as object), rope_type: type } as RopeScaling;
  }
  const attentionBias = bool('attention_bias', false);
  const known = new Set([
    'model_type', 'architectures', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers',
    'num_attention_heads', 'num_key_value_heads', 'head_dim', 'rms_norm_eps', 'rope_theta', 'rope_scaling',
    'max_position_embeddings', 'tie_word_embeddings', 'attention_bias', 'mlp_bias', 'initializer_range',
    'bos_token_id', 'eos_token_id', 'pad_token_id', 'hidden_act', 'torch_dtype', 'dtype', 'rope_parameters',
  ]);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(j)) if (!known.has(k)) extra[k] = v;
  return {
    model_type: modelType,
    architectures: Array.isArray(j.architectures) ? (j.architectures as string[]) : [ARCH[modelType]],
    vocab_size: int('vocab_size'),
    hidden_size: hidden,
    intermediate_size: int('intermediate_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: num('rms_norm_eps', 1e-6),
    rope_theta: num('rope_theta', 10000),
    rope_scaling: ropeScaling,
    max_position_embeddings: int('max_position_embeddings', 2048),
    tie_word_embeddings: bool('tie_word_embeddings', false),
    qkv_bias: modelType === 'qwen2' ? true : attentionBias,
    o_bias: modelType === 'llama' ? attentionBias : false,
    mlp_bias: modelType === 'llama' ? bool('mlp_bias', false) : false,
    initializer_range: num('initializer_range', 0.02),
    bos_token_id: typeof j.bos_token_id === 'number' ? j.bos_token_id : undefined,
    eos_token_id: (typeof j.eos_token_id === 'number' || Array.isArray(j.eos_token_id)) ? (j.eos_token_id as number | number[]) : undefined,
    pad_token_id: typeof j.pad_token_id === 'number' ? j.pad_token_id : undefined,
    extra,
  };
}

/**
 * Whether a model folder's config.json declares a sequence-classification architecture
 * (engine/classifier.ts loads those; loadModel the causal ones).
 */
export function isSequenceClassifier(dir: string): boolean {
  const json = readJsonFile<Record<string, unknown>>(join(dir, 'config.json'));
  return Array.isArray(json.architectures) && json.architectures.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification'));
}

export function loadConfig(path: string): ModelConfig {
  return parseConfig(readJsonFile(path), path);
}

/** The config.json object transformers reads (weights written here are float32). */
export function toHfConfig(c: ModelConfig, torchDtype = 'float32'): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...c.extra,
    architectures: c.architectures,
    model_type: c.model_type,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim,
    hidden_act: 'silu',
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: c.rope_scaling,
    max_position_embeddings: c.max_position_embeddings,
    tie_word_embeddings: c.tie_word_embeddings,
    initializer_range: c.initializer_range,
    torch_dtype: torchDtype,
  };
  if (c.model_type === 'llama') {
    out.attention_bias = c.qkv_bias;
    out.mlp_bias = c.mlp_bias;
  }
  if (c.bos_token_id !== undefined) out.bos_token_id = c.bos_token_id;
  if (c.eos_token_id !== undefined) out.eos_token_id = c.eos_token_id;
  if (c.pad_token_id !== undefined) out.pad_token_id = c.pad_token_id;
  return out;
}

/** Every weight of the model with its Hugging Face name and shape ([out, in] for linear layers). */
export function weightShapes(c: ModelConfig): Map<string, number[]> {
  const C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, C]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [C]);
    m.set(p + 'self_attn.q_proj.weight', [q, C]);
    m.set(p + 'self_attn.k_proj.weight', [kv, C]);
    m.set(p + 'self_attn.v_proj.weight', [kv, C]);
    if (c.qkv_bias) {
      m.set(p + 'self_attn.q_proj.bias', [q]);
      m.set(p + 'self_attn.k_proj.bias', [kv]);
      m.set(p + 'self_attn.v_proj.bias', [kv]);
    }
    m.set(p + 'self_attn.o_proj.weight', [C, q]);
    if (c.o_bias) m.set(p + 'self_attn.o_proj.bias', [C]);
    m.set(p + 'post_attention_layernorm.weight', [C]);
    m.set(p + 'mlp.gate_proj.weight', [I, C]);
    m.set(p + 'mlp.up_proj.weight', [I, C]);
    m.set(p + 'mlp.down_proj.weight', [C, I]);
    if (c.mlp_bias) {
      m.set(p + 'mlp.gate_proj.bias', [I]);
      m.set(p + 'mlp.up_proj.bias', [I]);
      m.set(p + 'mlp.down_proj.bias', [C]);
    }
  }
  m.set('model.norm.weight', [C]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [V, C]);
  return m;
}

export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const shape of weightShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

export interface MemoryEstimate {
  params: number;
  /** Weights alone, in the given dtype. */
  weightsBytes: number;
  /** KV cache for `batch` sequences of `seqLen` tokens (same dtype as the weights). */
  kvCacheBytes: number;
  /** Training in float32 with AdamW: weights + gradients + two moments (16 bytes a parameter). */
  trainingStateBytes: number;
  /** Rough activations kept for backprop at this batch and length (float32). */
  activationBytes: number;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, bfloat16: 2, float16: 2 };

export function memoryEstimate(
  c: ModelConfig,
  opts: { dtype?: 'float32' | 'bfloat16' | 'float16'; batch?: number; seqLen?: number } = {},
): MemoryEstimate {
  const bytes = DTYPE_BYTES[opts.dtype ?? 'float32'];
  const B = opts.batch ?? 1, T = opts.seqLen ?? c.max_position_embeddings;
  const params = parameterCount(c);
  const kvPerToken = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  // Per layer and token: inputs of both norms, q/k/v, attention output, gate/up/act/product,
  // plus the attention probabilities (heads x T); then the logits.
  const perLayerToken = 4 * c.hidden_size + q + 2 * kv + q + 4 * c.intermediate_size + 2 * c.num_attention_heads * T;
  const activations = B * T * (c.num_hidden_layers * perLayerToken + 2 * c.vocab_size);
  return {
    params,
    weightsBytes: params * bytes,
    kvCacheBytes: B * T * kvPerToken * bytes,
    trainingStateBytes: params * 16,
    activationBytes: activations * 4,
  };
}
