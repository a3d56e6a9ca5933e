/**
 * Sequence classifiers of the Llama / Qwen2 family (transformers' Qwen2ForSequenceClassification
 * and LlamaForSequenceClassification): the decoder trunk (`model.*`), then a linear head without
 * bias, `score.weight` [num_labels, hidden], on the final hidden state of one token per sequence.
 *
 * The token is the one transformers pools: the rightmost token that is not config.json's
 * pad_token_id (the first one when every token is padding; the last one when the config has no
 * pad_token_id). So a text that ends with the pad token (e.g. an end-of-sequence token that is
 * also the pad token) is classified at the token before it; its hidden state still sees only what
 * precedes it, as attention is causal.
 *
 * Rows of a batch are left-padded and masked, so each row computes what it would alone.
 */
import { join } from 'node:path';
import * as tf from './tf.ts';
import { readJsonFile } from '../common/fs.ts';
import { readWeights } from './checkpoint.ts';
import { parseConfig, weightShapes, type ModelConfig } from './config.ts';

export { isSequenceClassifier } from './config.ts';
import { CausalLM, leftPadRows } from './model.ts';

/** The architectures loadSequenceClassifier reads. */
export const CLASSIFIER_ARCHITECTURES = ['Qwen2ForSequenceClassification', 'LlamaForSequenceClassification'] as const;

export interface ClassifierConfig {
  /** The trunk's configuration (its lm_head is never used). */
  model: ModelConfig;
  architecture: (typeof CLASSIFIER_ARCHITECTURES)[number];
  numLabels: number;
  /** Label names by index (config.json's id2label; LABEL_k where it has none). */
  labels: string[];
  /** The id whose tokens are skipped when picking the pooled token; undefined: the last token. */
  padTokenId?: number;
}

/** Reads a classifier's config.json object; `where` names the file in error messages. */
export function parseClassifierConfig(json: unknown, where = 'config.json'): ClassifierConfig {
  const model = parseConfig(json, where);
  const j = json as Record<string, unknown>;
  const archs = Array.isArray(j.architectures) ? j.architectures : [];
  const architecture = CLASSIFIER_ARCHITECTURES.find((a) => archs.includes(a));
  if (!architecture) {
    throw new Error(`${where}: architectures ${JSON.stringify(j.architectures)} names no sequence classifier the engine runs: use ${CLASSIFIER_ARCHITECTURES.join(' or ')}`);
  }
  // transformers derives num_labels from id2label when it is there, else reads num_labels (default 2).
  const id2label = j.id2label;
  let labels: string[];
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== 'object' || Array.isArray(id2label)) throw new Error(`${where}: "id2label" must be an object of label index to name`);
    const entries = Object.entries(id2label as Record<string, unknown>);
    labels = entries.map(() => '');
    for (const [k, v] of entries) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= entries.length || typeof v !== 'string') {
        throw new Error(`${where}: "id2label" must map 0..${entries.length - 1} to names, got ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
      }
      labels[i] = v;
    }
  } else {
    const n = j.num_labels ?? 2;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new Error(`${where}: "num_labels" must be a positive integer, got ${JSON.stringify(n)}`);
    labels = Array.from({ length: n }, (_, i) => `LABEL_${i}`);
  }
  if (typeof j.num_labels === 'number' && j.num_labels !== labels.length) {
    throw new Error(`${where}: "num_labels" is ${j.num_labels} but "id2label" names ${labels.length} labels`);
  }
  // The trunk alone: no lm_head is allocated (the head is score.weight).
  return { model: { ...model, tie_word_embeddings: true }, architecture, numLabels: labels.length, labels, padTokenId: model.pad_token_id };
}

/** The token transformers pools for a row: the rightmost non-pad token (see the file comment). */
export function pooledIndex(ids: ArrayLike<number>, padTokenId: number | undefined): number {
  if (ids.length === 0) throw new Error('sequence classifier: an empty row has no token to classify');
  if (padTokenId === undefined) return ids.length - 1;
  for (let i = ids.length - 1; i >= 0; i--) if (ids[i] !== padTokenId) return i;
  return 0;
}

export class SequenceClassifier {
  /** score.weight held as [hidden, num_labels]. */
  private readonly head: tf.Variable;

  constructor(readonly config: ClassifierConfig, readonly trunk: CausalLM = new CausalLM(config.model)) {
    this.head = tf.variable(tf.zeros([config.model.hidden_size, config.numLabels]), false);
  }

  /** Sets score.weight from the files' layout [num_labels, hidden]. */
  setScoreWeight(data: Float32Array): void {
    const { hidden_size: C } = this.config.model;
    const L = this.config.numLabels;
    if (data.length !== C * L) throw new Error(`score.weight: ${data.length} values, expected ${L} x ${C}`);
    tf.tidy(() => this.head.assign(tf.transpose(tf.tensor2d(data, [L, C]))));
  }

  /** Class logits [B][num_labels] of each row of token ids, computed together. */
  logits(rows: number[][]): number[][] {
    if (rows.length === 0) return [];
    const picks = rows.map((r) => pooledIndex(r, this.config.padTokenId));
    const { ids, mask } = leftPadRows(rows, 0);
    const T = ids[0].length;
    const input = tf.tensor2d(ids, [rows.length, T], 'int32');
    try {
      const out = tf.tidy(() => {
        const h = this.trunk.hiddenStates(input, { attentionMask: mask });
        const flat = tf.reshape(h, [rows.length * T, this.config.model.hidden_size]);
        const at = tf.tensor1d(rows.map((r, b) => b * T + (T - r.length) + picks[b]), 'int32');
        return tf.matMul(tf.gather(flat, at), this.head);
      });
      const data = out.arraySync() as number[][];
      out.dispose();
      return data;
    } finally {
      input.dispose();
    }
  }

  /** Class probabilities (softmax of the logits, in double precision) of each row. */
  probabilities(rows: number[][]): number[][] {
    return this.logits(rows).map(softmax);
  }

  dispose(): void {
    this.trunk.dispose();
    this.head.dispose();
  }
}

export function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Loads a Hugging Face sequence-classifier folder (config.json, safetensors with model.* and score.weight). */
export async function loadSequenceClassifier(dir: string): Promise<SequenceClassifier> {
  const cfgPath = join(dir, 'config.json');
  const config = parseClassifierConfig(readJsonFile(cfgPath), cfgPath);
  const expected = weightShapes(config.model);
  expected.set('score.weight', [config.numLabels, config.model.hidden_size]);
  let clf: SequenceClassifier | undefined;
  try {
    readWeights(dir, config.model, expected, () => false, () => {
      clf = new SequenceClassifier(config);
      return (name, shape, data) => {
        if (name === 'score.weight') clf!.setScoreWeight(data);
        else clf!.trunk.setWeights(new Map([[name, { shape, data }]]));
      };
    });
  } catch (err) {
    clf?.dispose();
    throw err;
  }
  return clf!;
}
