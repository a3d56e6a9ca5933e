/**
 * The built-in engine behind the server: a checkpoint folder (engine/checkpoint.ts) and
 * its tokenizer, decoded with continuous batching on the engine's decoder session
 * (engine/decoder.ts): the running batch shares one KV cache, sequences joining are
 * prefilled together and merged in, sequences leaving are dropped when the next step re-forms
 * the cache (with those joining, in one copy). Positions count
 * only real tokens, so each sequence decodes exactly as it would alone.
 */
import { basename, join, resolve } from 'node:path';
import * as tf from '../engine/tf.ts';
import { initBackendFor } from '../engine/backend.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { loadConfig, parameterCount } from '../engine/config.ts';
import { DecoderSession } from '../engine/decoder.ts';
import type { CausalLM } from '../engine/model.ts';
import { logProbOf, topLogprobs } from '../engine/sampling.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import type { Backend, ChatTurn, DecodeBatch } from './backend.ts';
import type { SequenceStartTop, StepTokenTop } from './scheduler.ts';

/** A decode batch on the engine model: the scheduler's view of a decoder session. */
export class EngineBatch implements DecodeBatch {
  private readonly session: DecoderSession;

  constructor(model: CausalLM, padId: number) {
    this.session = new DecoderSession(model, { padTokenId: padId });
  }

  async add(seqs: SequenceStartTop[]): Promise<void> {
    this.session.add(seqs.map((s) => {
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

/**
 * A checkpoint's config, pad id and tokenizer, and what the server reports of the model (`served`,
 * no weights): the server's side of a backend whose model decodes elsewhere
 * (evaluation/engine-thread.ts), and the start of `loadEngineBackend`.
 */
export function loadEngineTokenizer(dir: string, opts: EngineBackendOptions = {}) {
  const config = loadConfig(join(dir, 'config.json'));
  const tokenizer = Tokenizer.load(dir);
  const eos = new Set(tokenizer.eosTokenIds);
  for (const id of [config.eos_token_id ?? []].flat()) eos.add(id);
  return {
    config,
    padId: tokenizer.padTokenId ?? config.pad_token_id ?? 0,
    served: {
      tokenizer,
      name: opts.name ?? defaultServedName(dir),
      path: resolve(dir),
      contextLength: config.max_position_embeddings,
      vocabSize: config.vocab_size,
      eosTokenIds: [...eos],
      encode: (text: string) => tokenizer.encode(text),
      decode: (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true }),
      encodeChat: (messages: ChatTurn[]) => tokenizer.encodeChat(messages),
    },
  };
}

/** Loads a checkpoint folder (config.json, model.safetensors, tokenizer files) as a server backend. */
export async function loadEngineBackend(dir: string, opts: EngineBackendOptions = {}): Promise<Backend & { model: CausalLM; tokenizer: Tokenizer; close(): void }> {
  const { config, padId, served } = loadEngineTokenizer(dir, opts);
  // The backend is picked before the weights load (they live on it): by the model's size.
  await initBackendFor('generation', parameterCount(config));
  const { model } = await loadModel(dir);
  let current: EngineBatch | null = null;
  return {
    ...served,
    model,
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
      current = new EngineBatch(model, padId);
      return current;
    },
    close() {
      current?.dispose();
      current = null;
      model.dispose();
    },
  };
}
