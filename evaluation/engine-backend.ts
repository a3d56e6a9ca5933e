/**
 * The built-in engine behind the server: a checkpoint folder (engine/checkpoint.ts) and
 * its tokenizer, decoded with continuous batching on the engine's decoder session
 * (engine/decoder.ts): the running batch shares one KV cache, sequences joining are
 * prefilled together and merged in, sequences leaving are dropped when the next step re-forms
 * the cache (with those joining, in one copy). Positions count
 * only real tokens, so each sequence decodes exactly as it would alone. On the single-threaded
 * backends (wasm, cpu) the batch is spread over worker threads with replicas of the model
 * (engine/parallel-decode.ts), one part per core.
 */
import { basename, join, resolve } from 'node:path';
import * as tf from '../engine/tf.ts';
import { initBackendFor } from '../engine/backend.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { loadConfig, parameterCount } from '../engine/config.ts';
import { DecoderSession } from '../engine/decoder.ts';
import { DecodeThreads, decodeThreads, type ParallelDecoderSession } from '../engine/parallel-decode.ts';
import type { CausalLM } from '../engine/model.ts';
import { logProbOf, topLogprobs } from '../engine/sampling.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import type { Backend, DecodeBatch } from './backend.ts';
import type { SequenceStartTop, StepTokenTop } from './scheduler.ts';

/** A decode batch on the engine model: the scheduler's view of a decoder session, on one thread or several. */
export class EngineBatch implements DecodeBatch {
  private readonly session: DecoderSession | ParallelDecoderSession;

  /** On `threads` when given (their session), else on the calling thread. */
  constructor(model: CausalLM, padId: number, threads?: DecodeThreads) {
    this.session = threads ? threads.session() : new DecoderSession(model, { padTokenId: padId });
  }

  async add(seqs: SequenceStartTop[]): Promise<void> {
    await this.session.add(seqs.map((s) => {
      const { temperature, topP, topK, minP, seed } = s.sampling;
      return { id: s.id, promptIds: s.promptIds, sampling: { temperature, topP, topK, minP }, seed, topLogprobs: s.topLogprobs };
    }));
  }

  remove(ids: number[]): void {
    this.session.remove(ids);
  }

  async step(): Promise<StepTokenTop[]> {
    return this.session.step();
  }

  /** Frees everything. */
  dispose(): void {
    this.session.dispose();
  }
}

export interface EngineBackendOptions {
  /** Name the model is served under; default: `defaultServedName(dir)`. */
  name?: string;
  /**
   * Threads a batch decodes on where the backend's kernels use one thread (wasm, cpu): default
   * `decodeThreads()` (DOCTOR_AGENT_DECODE_THREADS, else the cores, at most 4). On tensorflow the
   * batch stays on the calling thread, whose kernels use every core.
   */
  decodeThreads?: number;
}

/**
 * The name a checkpoint is served under by default: `RUN/STEP` for a folder a step wrote in the
 * artifact store (…/runs/RUN/steps/STEP/…, e.g. `huatuo-tiny-20260101-0200/sft`), so evaluations
 * of different checkpoints are told apart; otherwise the folder's name.
 */
export function defaultServedName(dir: string): string {
  const parts = resolve(dir).split(/[\\/]+/);
  for (let i = parts.length - 4; i >= 0; i--) {
    if (parts[i] === 'runs' && parts[i + 2] === 'steps' && parts[i + 1] && parts[i + 3]) return `${parts[i + 1]}/${parts[i + 3]}`;
  }
  return basename(resolve(dir));
}

/** Loads a checkpoint folder (config.json, model.safetensors, tokenizer files) as a server backend. */
export async function loadEngineBackend(dir: string, opts: EngineBackendOptions = {}): Promise<Backend & { model: CausalLM; tokenizer: Tokenizer; decodeThreads: number; close(): Promise<void> }> {
  // The backend is picked before the weights load (they live on it): by the model's size.
  await initBackendFor('generation', parameterCount(loadConfig(join(dir, 'config.json'))));
  const { model, config } = await loadModel(dir);
  const tokenizer = Tokenizer.load(dir);
  const eos = new Set(tokenizer.eosTokenIds);
  for (const id of [config.eos_token_id ?? []].flat()) eos.add(id);
  const padId = tokenizer.padTokenId ?? config.pad_token_id ?? 0;
  const wanted = tf.getBackend() === 'tensorflow' ? 1 : opts.decodeThreads ?? decodeThreads();
  const threads = wanted > 1 ? await DecodeThreads.start(model, wanted, { padTokenId: padId }) : undefined;
  let current: EngineBatch | null = null;
  return {
    name: opts.name ?? defaultServedName(dir),
    path: resolve(dir),
    contextLength: config.max_position_embeddings,
    vocabSize: config.vocab_size,
    eosTokenIds: [...eos],
    model,
    tokenizer,
    decodeThreads: threads?.count ?? 1,
    encode: (text) => tokenizer.encode(text),
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    encodeChat: (messages) =>
      tokenizer.encodeChat(messages),
    async promptLogprobs(promptIds, top) {
      const L = promptIds.length;
      if (L < 2) return [];
      const V = config.vocab_size;
      const input = tf.tensor2d([promptIds], [1, L], 'int32');
      const logits = model.forward(input);
      input.dispose();
      // Position t predicts token t + 1: the last position predicts nothing of the prompt.
      const rows = tf.tidy(() => tf.reshape(tf.slice(logits, [0, 0, 0], [1, L - 1, V]), [L - 1, V]));
      logits.dispose();
      const data = (await rows.data()) as Float32Array;
      rows.dispose();
      return promptIds.slice(1).map((token, t) => {
        const row = data.subarray(t * V, (t + 1) * V);
        return { logprob: logProbOf(row, token), top: top > 0 ? topLogprobs(row, top) : [] };
      });
    },
    newBatch() {
      current?.dispose();
      current = new EngineBatch(model, padId, threads);
      return current;
    },
    async close() {
      current?.dispose();
      current = null;
      await threads?.close();
      model.dispose();
    },
  };
}
