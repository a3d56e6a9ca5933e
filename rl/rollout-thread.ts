/**
 * Rollouts sampled on a replica of the policy in a worker thread, on the backend generation picks
 * for the model's size (wasm up to WASM_GENERATION_MAX_PARAMS), while the policy trains on
 * tensorflow in this thread.
 *
 * RL runs on tensorflow: its log-prob passes over whole sequences and its updates are training.
 * But sampling is a few hundred decoding steps of one token a row, and for a small model each
 * step is a hundred small kernels, each a call into TensorFlow's runtime; on wasm the same steps
 * run about three times faster (engine/README, "Backend per workload"). So before each rollout
 * whose weights changed, the policy's weights (as the variables hold them) are copied to the
 * replica, and the thread runs the same `generate()` call the in-process engine would
 * (evaluation/completions.ts `completeOnEngine`): the same seeds and rows, its logits those of
 * the other backend (equal up to float32 rounding, so now and then another token is drawn).
 * Deterministic for given weights and seeds, so a resumed run samples what the first run did.
 *
 * A rollout of more rows than `ROLLOUT_ROWS_PER_REPLICA` (16, where a decoding step's cost per row
 * stops falling on a CPU core, as for the decode threads) is sampled in slices of rows as even as
 * they come (40 rows: 13, 13 and 14), each a `generate()` call of its own whose row k draws from
 * the stream of row start + k of the whole, so each row draws what it would in one call. The
 * slices go to as many replicas as there are slices and cores (at most 8), on a run long enough
 * for the replicas to warm up (PARALLEL_ROLLOUT_MIN_TOKENS; `DOCTOR_AGENT_ROLLOUT_THREADS=N` for
 * another number): the training thread waits on its rollout, so the cores are free. The slices
 * depend on the number of rows only, so one replica or eight sample the same rollout, and a run
 * resumed with another number of cores samples what the first did.
 *
 * `rolloutThread` answers undefined where it does not apply (the policy not on tensorflow, a model
 * over the size limit, `DOCTOR_AGENT_ROLLOUT_THREAD=0`); a replica that cannot start (no wasm
 * backend) fails its rollout with the reason, and the loop samples in-process from then on.
 */
import { availableParallelism, freemem } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startEngineThread } from '../engine/threads.ts';
import * as tf from '../engine/tf.ts';
import { WASM_GENERATION_MAX_PARAMS } from '../engine/backend.ts';
import type { CausalLM } from '../engine/model.ts';
import type { ModelConfig } from '../engine/config.ts';
import type { TokenCompletion, TokenCompletionRequest, TokenCompletions } from '../evaluation/backend.ts';
import { choiceRows } from '../evaluation/completions.ts';

export type ToReplica =
  | { type: 'weights'; names: string[]; shapes: number[][]; data: Float32Array[] }
  | { type: 'complete'; id: number; req: TokenCompletionRequest; firstRow: number };
export type FromReplica =
  | { type: 'ready'; backend: string }
  | { type: 'cannot-start'; message: string }
  | { type: 'done'; id: number; result: TokenCompletion[] }
  | { type: 'failed'; id: number; message: string };
export interface ReplicaInit {
  entry: string;
  config: ModelConfig;
  parameters: number;
  padTokenId?: number;
}

export interface RolloutThread extends TokenCompletions {
  /** The backend the replicas decode on (known once one started). */
  readonly backend: () => string | undefined;
  /** How many replica threads have started so far. */
  readonly replicas: () => number;
  close(): Promise<void>;
}

/** Rows one replica samples together at most: a rollout of more goes in slices. */
export const ROLLOUT_ROWS_PER_REPLICA = 16;

/** The slices [start, end) of a rollout's rows: as few as hold ROLLOUT_ROWS_PER_REPLICA each, as even as they come. */
export function rolloutSlices(rows: number): [number, number][] {
  const k = Math.max(1, Math.ceil(rows / ROLLOUT_ROWS_PER_REPLICA));
  return Array.from({ length: k }, (_, i) => [Math.floor((i * rows) / k), Math.floor(((i + 1) * rows) / k)]);
}

/**
 * Tokens a run's rollouts must sample at least (as far as it can tell: rows x response length x
 * iterations) for replicas beyond the first to pay. A thread that has just started decodes at
 * half its speed or less for its first second or two (V8 compiling its hot paths), and a second
 * replica halves each rollout's rows, so on a short run the slices a new replica gets take longer
 * than the first would take for all of them: the demo's GRPO (4 rollouts of 32 rows, about 12,000
 * tokens) sampled in 4.0 s on two replicas against 3.6 s on one. Once warm, two replicas sample
 * 32 rows of 160 tokens in 228-297 ms against 394-408 ms on one (2 cores).
 */
export const PARALLEL_ROLLOUT_MIN_TOKENS = 100_000;

/**
 * How many replica threads a run's rollouts may use: one per core up to 8 when `tokens` (what
 * the run will sample, when known) reaches PARALLEL_ROLLOUT_MIN_TOKENS, else one, and no more than
 * half the free memory holds at three times a replica's weights (`parameters`, when known); or
 * DOCTOR_AGENT_ROLLOUT_THREADS.
 */
export function rolloutReplicaLimit(tokens?: number, parameters?: number): number {
  const set = process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
  if (set !== undefined && set !== '') {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 1) throw new Error(`DOCTOR_AGENT_ROLLOUT_THREADS=${set}: expected a whole number of threads, 1 or more`);
    return n;
  }
  if (tokens !== undefined && tokens < PARALLEL_ROLLOUT_MIN_TOKENS) return 1;
  const byMemory = parameters ? Math.floor(freemem() / 2 / (parameters * 4 * 3)) : Infinity;
  return Math.max(1, Math.min(availableParallelism(), 8, byMemory));
}

/** Whether rollouts of this policy go to a replica thread (see the file comment). */
export function usesRolloutThread(policy: CausalLM): boolean {
  return process.env.DOCTOR_AGENT_ROLLOUT_THREAD !== '0' && tf.getBackend() === 'tensorflow' && policy.numParams() <= WASM_GENERATION_MAX_PARAMS;
}

/** One replica thread: started at once, given the policy's weights when they changed, asked for one slice at a time. */
class Replica {
  backend: string | undefined;
  private readonly pending = new Map<number, { resolve(r: TokenCompletion[]): void; reject(e: Error): void }>();
  private nextId = 1;
  private failure: Error | undefined;
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  /** The weights it holds: the policy's variables' data when they were sent (an update assigns new data, so a changed variable has another dataId). */
  private sent: object[] = [];

  constructor(init: ReplicaInit) {
    let worker!: Worker;
    this.ready = new Promise<void>((resolve, reject) => {
      // Before it is ready, the start fails; after, what it holds fails, and every later slice.
      const died = (why: string) => {
        const e = new Error(`the rollout thread ${why}`);
        reject(e);
        this.failure ??= e;
        for (const p of this.pending.values()) p.reject(this.failure);
        this.pending.clear();
      };
      const message = (m: FromReplica) => {
        if (m.type === 'ready') {
          this.backend = m.backend;
          resolve();
        } else if (m.type === 'cannot-start') {
          reject(new Error(`the rollout thread did not start: ${m.message}`));
        } else {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (this.pending.size === 0) worker.unref();
          if (m.type === 'done') p.resolve(m.result);
          else p.reject(new Error(`the rollout thread failed: ${m.message}`));
        }
      };
      worker = startEngineThread<FromReplica>(init, { message, died });
      worker.unref();
    });
    this.worker = worker;
    this.ready.catch(() => {}); // awaited by each slice
  }

  /** One slice; `weights`: the policy's variables' data, in `policy.params` order, sent if this replica holds others. */
  async complete(policy: CausalLM, weights: () => Float32Array[], req: TokenCompletionRequest, firstRow: number): Promise<TokenCompletion[]> {
    // The thread keeps the process alive while a slice waits on it (its start included).
    this.worker.ref();
    try {
      await this.ready;
      if (this.failure) throw this.failure;
    } catch (err) {
      if (this.pending.size === 0) this.worker.unref();
      throw err;
    }
    this.syncWeights(policy, weights);
    const id = this.nextId++;
    const result = new Promise<TokenCompletion[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.postMessage({ type: 'complete', id, req, firstRow } satisfies ToReplica);
    return result;
  }

  private syncWeights(policy: CausalLM, weights: () => Float32Array[]): void {
    const vars = [...policy.params.values()];
    if (vars.length === this.sent.length && vars.every((v, i) => v.dataId === this.sent[i])) return;
    // A copy of its own, handed over to the thread.
    const data = weights().map((d) => d.slice());
    const msg: ToReplica = { type: 'weights', names: [...policy.params.keys()], shapes: vars.map((v) => v.shape), data };
    this.worker.postMessage(msg, data.map((d) => d.buffer));
    this.sent = vars.map((v) => v.dataId);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * The replicas for a policy's rollouts, or undefined (see the file comment). `rows`: how many rows
 * its rollouts have, when known, so that the replicas they need start now, not at the first;
 * `tokens`: how many tokens the run will sample at most, when known (rolloutReplicaLimit).
 */
export function rolloutThread(policy: CausalLM, opts: { padTokenId?: number; rows?: number; tokens?: number } = {}): RolloutThread | undefined {
  if (!usesRolloutThread(policy)) return undefined;
  const init: ReplicaInit = {
    entry: new URL('./rollout-thread-worker.ts', import.meta.url).href,
    config: policy.config, parameters: policy.numParams(), ...(opts.padTokenId !== undefined ? { padTokenId: opts.padTokenId } : {}),
  };
  const limit = rolloutReplicaLimit(opts.tokens, policy.numParams());
  // Those the expected rollouts need start now (one at least), any others when a rollout has slices for them.
  const replicas: Replica[] = Array.from({ length: Math.min(limit, rolloutSlices(opts.rows ?? 1).length) }, () => new Replica(init));
  return {
    get where() {
      return replicas.length === 1 ? 'a replica of the policy in a rollout thread' : `${replicas.length} replicas of the policy in rollout threads`;
    },
    backend: () => replicas.find((r) => r.backend)?.backend,
    replicas: () => replicas.length,
    async complete(req) {
      // Row k of the rollout is choice k (prompt-major); a slice asks for its rows with n = 1.
      const rows = choiceRows(req);
      const slices = rolloutSlices(rows.length);
      const use = Math.min(limit, slices.length);
      while (replicas.length < use) replicas.push(new Replica(init));
      // The policy's weights, read once for the replicas that need them (it does not change during a rollout).
      let snapshot: Float32Array[] | undefined;
      const weights = () => (snapshot ??= [...policy.params.values()].map((v) => v.dataSync() as Float32Array));
      // Replica j samples slices j, j + use, ... one after another, the replicas at once.
      const parts = await Promise.all(replicas.slice(0, use).map(async (replica, j) => {
        const got: TokenCompletion[][] = [];
        for (let i = j; i < slices.length; i += use) {
          const [start, end] = slices[i];
          const part = slices.length === 1 ? req : { ...req, prompts: rows.slice(start, end), n: 1 };
          got.push(await replica.complete(policy, weights, part, start));
        }
        return got;
      }));
      const out: TokenCompletion[] = [];
      for (let i = 0; i < slices.length; i++) out.push(...parts[i % use][Math.floor(i / use)]);
      return out;
    },
    async close() {
      await Promise.all(replicas.map((r) => r.close()));
    },
  };
}
