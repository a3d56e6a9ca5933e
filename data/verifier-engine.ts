/**
 * The model verifier on a checkpoint of the built-in engine, no server needed: a causal LM
 * judging the judge prompt (EngineScorer, below), or a sequence classifier such as HuatuoGPT-o1's
 * verifier (ClassifierScorer, at the end).
 *
 * The judge prompt is rendered with the checkpoint's chat template (generation prompt on),
 * and one forward pass gives the next-token distribution at the last position of each
 * prompt. P(True) = p(True) / (p(True) + p(False)), where p(True) sums the probabilities of
 * the first token of "True" and of " True" as this tokenizer encodes them (the same token
 * counts once), and likewise for False. Summing both spellings makes the score independent
 * of whether a model learned to answer with a leading space. A token that starts both words
 * (e.g. a lone space in a tiny byte-level vocabulary) says nothing and is left out.
 *
 * Calls made together (RL scores a whole rollout with Promise.all) are queued and scored on
 * the next turn of the event loop in one left-padded, masked forward pass per `maxBatch` prompts.
 */
import * as tf from '../engine/tf.ts';
import { initBackend } from '../engine/backend.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { leftPadRows, type CausalLM } from '../engine/model.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import { loadSequenceClassifier, type SequenceClassifier } from '../engine/classifier.ts';
import { huatuoVerifierInput } from './prompts/verify.ts';

export interface AnswerTokens {
  /** Ids whose probability counts for True. */
  true: number[];
  /** Ids whose probability counts for False. */
  false: number[];
}

/** The first token of "True"/" True" and "False"/" False" under this tokenizer (see the file comment). */
export function answerTokenIds(tok: Tokenizer): AnswerTokens {
  const first = (words: string[]) => new Set(words.map((w) => tok.encode(w, { addSpecialTokens: false })[0]).filter((id) => id !== undefined));
  const t = first(['True', ' True']);
  const f = first(['False', ' False']);
  const shared = [...t].filter((id) => f.has(id));
  for (const id of shared) { t.delete(id); f.delete(id); }
  if (t.size === 0 || f.size === 0) {
    throw new Error(`${tok.source}: the tokenizer starts "True" and "False" with the same token, so a verifier cannot tell them apart from the next token`);
  }
  return { true: [...t], false: [...f] };
}

/** P(True) from one row of next-token logits. */
export function pTrueFromLogits(logits: ArrayLike<number>, ids: AnswerTokens): number {
  let max = -Infinity;
  for (const id of [...ids.true, ...ids.false]) max = Math.max(max, logits[id]);
  // The softmax's normaliser cancels in the ratio, so only the answer tokens are needed.
  const mass = (list: number[]) => list.reduce((s, id) => s + Math.exp(logits[id] - max), 0);
  const t = mass(ids.true);
  return t / (t + mass(ids.false));
}

export interface EngineScorerOptions {
  /** Most prompts in one forward pass (default 32). */
  maxBatch?: number;
}

interface Pending {
  input: string;
  resolve(p: number): void;
  reject(e: Error): void;
}

/**
 * What both scorers share: score() calls made in the same turn of the event loop are queued and
 * given together to the scorer's scoreBatch on the next turn; close() frees the model once.
 */
abstract class BatchedScorer<M extends { dispose(): void }> {
  /** Forward passes run so far (one per batch of at most maxBatch inputs). */
  forwardPasses = 0;
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;

  protected constructor(readonly dir: string, protected readonly model: M) {}

  /** P(True) of each input, maxBatch at a time. */
  abstract scoreBatch(inputs: string[]): number[];

  /** P(True) of one input; calls made in the same turn of the event loop share forward passes. */
  score(input: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.model.dispose();
  }

  /** Throws once the model was closed. */
  protected checkOpen(): void {
    if (this.closed) throw new Error(`${this.dir}: the verifier model was closed`);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0);
    try {
      const ps = this.scoreBatch(batch.map((b) => b.input));
      batch.forEach((b, i) => b.resolve(ps[i]));
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
    }
  }
}

export class EngineScorer extends BatchedScorer<CausalLM> {
  readonly answerIds: AnswerTokens;
  private readonly pad: number;
  private readonly maxBatch: number;

  private constructor(dir: string, model: CausalLM, readonly tokenizer: Tokenizer, opts: EngineScorerOptions) {
    super(dir, model);
    this.answerIds = answerTokenIds(tokenizer);
    const V = model.config.vocab_size;
    const outside = [...this.answerIds.true, ...this.answerIds.false].find((id) => id >= V);
    if (outside !== undefined) throw new Error(`${dir}: the tokenizer's answer token ${outside} is outside the model's vocabulary (${V}): tokenizer and config.json do not match`);
    this.pad = tokenizer.batchPadId;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
  }

  /** Loads a checkpoint folder (config.json, weights, tokenizer with a chat template). */
  static async load(dir: string, opts: EngineScorerOptions = {}): Promise<EngineScorer> {
    await initBackend();
    const { model } = await loadModel(dir);
    try {
      return new EngineScorer(dir, model, Tokenizer.load(dir), opts);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** The token ids of a judge prompt: the chat template with the generation prompt, cut from the left to fit. */
  promptIds(prompt: string): number[] {
    const ids = this.tokenizer.encodeChat([{ role: 'user', content: prompt }]);
    const room = this.model.config.max_position_embeddings;
    return ids.length > room ? ids.slice(ids.length - room) : ids;
  }

  /** P(True) of each prompt, in one forward pass per maxBatch prompts. */
  scoreBatch(prompts: string[]): number[] {
    this.checkOpen();
    const out: number[] = [];
    for (let i = 0; i < prompts.length; i += this.maxBatch) out.push(...this.forward(prompts.slice(i, i + this.maxBatch).map((p) => this.promptIds(p))));
    return out;
  }

  private forward(rows: number[][]): number[] {
    const { ids, mask } = leftPadRows(rows, this.pad);
    const input = tf.tensor2d(ids, [rows.length, ids[0].length], 'int32');
    const logits = this.model.forward(input, { attentionMask: mask, lastOnly: true });
    input.dispose();
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    this.forwardPasses++;
    const V = this.model.config.vocab_size;
    return rows.map((_, b) => pTrueFromLogits(data.subarray(b * V, (b + 1) * V), this.answerIds));
  }
}

// ---------------------------------------------------------------- sequence classifiers

/** The reward truncates the verifier's input to this many tokens (from the right), as HuatuoGPT-o1's. */
export const VERIFIER_MAX_LENGTH = 4000;

export interface ClassifierScorerOptions {
  /** Most inputs in one forward pass (default 8, the recipe's rollout forward batch). */
  maxBatch?: number;
  /** Inputs longer than this many tokens keep their first ones (default VERIFIER_MAX_LENGTH). */
  maxLength?: number;
}

/**
 * A two-label sequence classifier as the verifier (HuatuoGPT-o1's medical_o1_verifier_3B): its
 * input is the text of data/prompts/verify.ts huatuoVerifierInput, ending with this tokenizer's
 * end-of-sequence token, encoded without added special tokens and cut to maxLength tokens; P(True)
 * is the softmax of the score head at index 1, as the recipe reads it. Calls made in the same turn
 * of the event loop share forward passes.
 */
export class ClassifierScorer extends BatchedScorer<SequenceClassifier> {
  /** The end-of-sequence token's text, the last part of every input. */
  readonly eosToken: string;
  private readonly maxBatch: number;
  private readonly maxLength: number;

  private constructor(dir: string, model: SequenceClassifier, readonly tokenizer: Tokenizer, opts: ClassifierScorerOptions) {
    super(dir, model);
    if (model.config.numLabels !== 2) {
      throw new Error(`${dir}: the verifier classifier has ${model.config.numLabels} labels; P(True) is read as label 1 of two (config.json num_labels / id2label)`);
    }
    const eos = tokenizer.eosTokenId === null ? undefined : tokenizer.idToToken(tokenizer.eosTokenId);
    if (eos === undefined) throw new Error(`${dir}: the verifier's tokenizer has no eos_token (tokenizer_config.json), which ends every verifier input`);
    if (tokenizer.vocabSize > model.config.model.vocab_size) {
      throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${model.config.model.vocab_size}: tokenizer and model do not match`);
    }
    this.eosToken = eos;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 8);
    this.maxLength = Math.max(1, opts.maxLength ?? VERIFIER_MAX_LENGTH);
  }

  /** Loads a classifier folder (config.json, weights, tokenizer). */
  static async load(dir: string, opts: ClassifierScorerOptions = {}): Promise<ClassifierScorer> {
    await initBackend();
    const model = await loadSequenceClassifier(dir);
    try {
      return new ClassifierScorer(dir, model, Tokenizer.load(dir), opts);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** The verifier input of a response (null: a malformed one) and its reference answer. */
  inputText(response: string | null, reference: string): string {
    return huatuoVerifierInput(response, reference, this.eosToken);
  }

  /** Token ids of an input: no added special tokens, the first maxLength kept. */
  inputIds(text: string): number[] {
    const ids = this.tokenizer.encode(text, { addSpecialTokens: false });
    return ids.length > this.maxLength ? ids.slice(0, this.maxLength) : ids;
  }

  /** P(True) of each input text, maxBatch at a time. */
  scoreBatch(texts: string[]): number[] {
    this.checkOpen();
    const out: number[] = [];
    for (let i = 0; i < texts.length; i += this.maxBatch) {
      const probs = this.model.probabilities(texts.slice(i, i + this.maxBatch).map((t) => this.inputIds(t)));
      this.forwardPasses++;
      out.push(...probs.map((p) => p[1]));
    }
    return out;
  }
}
