/**
 * Data-parallel training of the causal language-modelling loss over the machine's cores.
 *
 * A step's sequences are split into one shard per thread: the calling thread computes the first
 * shard on the model itself, worker threads (engine/train-worker.ts) the others on replicas of
 * it. Each returns its gradient flat, in the optimizer's layout (FlatLayout), through shared
 * memory; the calling thread adds them in shard order, then clips and applies the sum as
 * trainStep does. After an update the new weights go to the replicas the same way.
 *
 * The sum is the gradient of the step's loss, the mean over micro-batches of each one's mean
 * token loss: a shard's part of a micro-batch is weighted by its share of the micro-batch's
 * scored tokens. Each part is cut after its last scored token (padding is on the right and
 * attention is causal, so the columns after it change nothing). Results are deterministic for a
 * given thread count; another count adds the same terms in another order (float rounding only).
 *
 * On the tensorflow backend each thread then runs TensorFlow single-threaded
 * (TF_NUM_INTRAOP_THREADS=1, set before it loads): a step of the tiny model is hundreds of small
 * kernels, for which waking TensorFlow's own thread pool costs more than it gains, so whole
 * shards in parallel use the cores better (engine/README.md, "Using both cores").
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startEngineThread } from './threads.ts';
import * as tf from './tf.ts';
import { initBackendFor } from './backend.ts';
import type { ModelConfig } from './config.ts';
import { causalLmLoss } from './loss.ts';
import type { CausalLM } from './model.ts';
import type { AdamW, FlatLayout } from './optim.ts';
import { applyFlatGradient, type StepResult } from './train.ts';

/** Sequences and their loss masks (1: the token is scored), right-padded to one length. */
export interface LmBatch {
  ids: number[][];
  mask: number[][];
}

/** Rows of one micro-batch given to one shard, with the weight of their mean loss in the step's loss. */
export interface Part {
  ids: number[][];
  mask: number[][];
  factor: number;
}

/** Most threads the default uses (more replicas cost memory for a shrinking gain on small batches). */
const DEFAULT_MAX_THREADS = 4;

/**
 * Threads for training: DOCTOR_AGENT_TRAIN_THREADS when set (1: no worker threads), else the
 * cores available, at most 4.
 */
export function trainThreads(): number {
  const raw = process.env.DOCTOR_AGENT_TRAIN_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) {
      throw new Error(`DOCTOR_AGENT_TRAIN_THREADS=${raw} is not a thread count: use a whole number from 1 (no worker threads) up`);
    }
    return n;
  }
  return Math.max(1, Math.min(DEFAULT_MAX_THREADS, availableParallelism()));
}

/**
 * Chooses the training threads and initialises the training backend for them: with more than
 * one, TensorFlow is asked for one thread per op and one to schedule them (TF_NUM_INTRAOP_THREADS
 * and TF_NUM_INTEROP_THREADS 1, unless set) before it loads. Call it before anything loads TensorFlow.js in this process.
 */
export async function initTrainingBackend(): Promise<{ backend: string; threads: number }> {
  const threads = trainThreads();
  if (threads > 1) {
    process.env.TF_NUM_INTRAOP_THREADS ??= '1';
    process.env.TF_NUM_INTEROP_THREADS ??= '1';
  }
  const backend = await initBackendFor('training');
  return { backend, threads };
}

/** Scored tokens of a row: mask entries after the first (position 0 is never a target). */
function scored(maskRow: number[]): number {
  let n = 0;
  for (let t = 1; t < maskRow.length; t++) n += maskRow[t];
  return n;
}

/**
 * The step's micro-batches split into `shards` shards of contiguous rows. A micro-batch of c
 * scored tokens gives each shard its rows with c_p > 0 scored tokens, cut after the last one,
 * with factor c_p / (c × micro-batches): the weighted sum of the parts' mean losses is the
 * step's loss. A step with no scored token at all gives the first shard its first micro-batch
 * with factor 0 (a zero gradient, as trainStep would compute).
 */
export function shardBatches(batches: LmBatch[], shards: number): Part[][] {
  const out: Part[][] = Array.from({ length: shards }, () => []);
  const n = batches.length;
  for (const b of batches) {
    const B = b.ids.length;
    if (b.mask.length !== B) throw new Error(`loss mask has ${b.mask.length} rows, input ids ${B}`);
    const counts = b.mask.map(scored);
    const total = counts.reduce((a, c) => a + c, 0);
    if (total === 0) continue;
    for (let s = 0; s < shards; s++) {
      const r0 = Math.floor((s * B) / shards), r1 = Math.floor(((s + 1) * B) / shards);
      let c = 0, last = 0;
      for (let r = r0; r < r1; r++) {
        c += counts[r];
        const row = b.mask[r];
        for (let t = row.length - 1; t > last; t--) if (row[t]) { last = t; break; }
      }
      if (c === 0) continue;
      out[s].push({
        ids: b.ids.slice(r0, r1).map((row) => row.slice(0, last + 1)),
        mask: b.mask.slice(r0, r1).map((row) => row.slice(0, last + 1)),
        factor: c / (total * n),
      });
    }
  }
  if (out.every((parts) => parts.length === 0) && n > 0) out[0].push({ ...batches[0], factor: 0 });
  return out;
}

/**
 * The weighted gradient of a shard's parts, flat in `layout`, with the weighted loss and which
 * parameters got a gradient; undefined for no parts.
 */
export function shardGradient(model: CausalLM, layout: FlatLayout, parts: Part[]): { flat: tf.Tensor1D; loss: number; present: boolean[] } | undefined {
  const vars = [...model.params.values()];
  let sum: tf.Tensor1D | undefined;
  let present: boolean[] | undefined;
  let loss = 0;
  try {
    for (const part of parts) {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mul(causalLmLoss(model, part.ids, part.mask), part.factor) as tf.Scalar), vars);
      loss += value.dataSync()[0];
      value.dispose();
      const byName = new Map<string, tf.Tensor>();
      model.params.forEach((v, name) => { if (grads[v.name]) byName.set(name, grads[v.name]); });
      const f = layout.flatten(byName);
      tf.dispose(Object.values(grads));
      present = present ? present.map((p, i) => p || f.present[i]) : f.present;
      if (sum) {
        const prev = sum;
        sum = tf.add(prev, f.flat) as tf.Tensor1D;
        prev.dispose();
        f.flat.dispose();
      } else sum = f.flat;
    }
  } catch (err) {
    sum?.dispose();
    throw err;
  }
  return sum && present ? { flat: sum, loss, present } : undefined;
}

/** What the calling thread sends a worker thread. */
export type ToWorker = { type: 'step'; parts: Part[]; weights: boolean } | { type: 'close' };
/** What a worker thread answers. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; loss: number; present: boolean[] | null }
  | { type: 'error'; message: string; stack?: string };

/** The start-up data of a worker thread. */
export interface WorkerInit {
  /** The thread's module (engine/worker-thread.mjs loads it). */
  entry: string;
  config: ModelConfig;
  backend: string;
  /** The model's weights, flat in the optimizer's layout (written by the calling thread). */
  weights: SharedArrayBuffer;
  /** This worker's gradient, flat (written by the worker). */
  grad: SharedArrayBuffer;
}

interface Replica {
  worker: Worker;
  grad: SharedArrayBuffer;
  /** The answer awaited, if a step is in flight. */
  pending?: { resolve(m: FromWorker): void; reject(e: Error): void };
  failed?: Error;
}

/**
 * Training steps of the causal LM loss on `threads` threads (see the module's comment). With one
 * thread no worker is started. Close it when done: its workers keep the process alive until then.
 */
export class ParallelTrainer {
  /** The flat weights last sent to the replicas. */
  private sent?: tf.Tensor1D;
  private readonly weights?: SharedArrayBuffer;
  private closed = false;
  /**
   * Where the last step's time went on the calling thread: its own shard (sending the weights
   * included), waiting for the other threads, the optimizer's update (norm and clipping included).
   */
  lastTimes?: { stepMs: number; ownShardMs: number; waitMs: number; applyMs: number };

  private constructor(private readonly model: CausalLM, private readonly optimizer: AdamW, private readonly replicas: Replica[], weights?: SharedArrayBuffer) {
    this.weights = weights;
  }

  /** Threads a step runs on (the calling one included). */
  get threads(): number {
    return this.replicas.length + 1;
  }

  static async start(model: CausalLM, optimizer: AdamW, threads = trainThreads()): Promise<ParallelTrainer> {
    if (threads <= 1) return new ParallelTrainer(model, optimizer, []);
    const bytes = optimizer.layout.total * 4;
    const weights = new SharedArrayBuffer(bytes);
    const replicas: Replica[] = [];
    try {
      for (let i = 1; i < threads; i++) {
        const grad = new SharedArrayBuffer(bytes);
        const init: WorkerInit = { entry: new URL('./train-worker.ts', import.meta.url).href, config: model.config, backend: tf.getBackend(), weights, grad };
        const message = (m: FromWorker) => {
          const p = replica.pending;
          replica.pending = undefined;
          if (m.type === 'error') {
            const e = new Error(`training thread ${i}: ${m.message}`);
            if (m.stack) e.stack = `${e.message}\n${m.stack}`;
            p?.reject(e);
          } else p?.resolve(m);
        };
        const died = (why: string) => {
          const e = new Error(`training thread ${i} ${why}`);
          replica.failed = e;
          replica.pending?.reject(e);
          replica.pending = undefined;
        };
        // The handlers run once the thread answers, after `replica` is set.
        const replica: Replica = { grad, worker: startEngineThread<FromWorker>(init, { message, died }) };
        const ready = new Promise<void>((resolve, reject) => { replica.pending = { resolve: () => resolve(), reject }; });
        replicas.push(replica);
        await ready;
      }
    } catch (err) {
      await Promise.all(replicas.map((r) => r.worker.terminate()));
      throw err;
    }
    return new ParallelTrainer(model, optimizer, replicas, weights);
  }

  /** Sends `msg` to a replica and waits for its answer. */
  private ask(r: Replica, msg: ToWorker): Promise<FromWorker> {
    if (r.failed) return Promise.reject(r.failed);
    return new Promise<FromWorker>((resolve, reject) => {
      r.pending = { resolve, reject };
      r.worker.postMessage(msg);
    });
  }

  /**
   * One optimisation step over the micro-batches (their mean losses averaged), clipped to
   * maxGradNorm when set, applied by the optimizer at rate lr.
   */
  async step(batches: LmBatch[], opts: { lr: number; maxGradNorm?: number }): Promise<StepResult> {
    if (this.closed) throw new Error('ParallelTrainer.step: the trainer is closed');
    if (batches.length === 0) throw new Error('ParallelTrainer.step: no micro-batches');
    const t0 = performance.now();
    const shards = shardBatches(batches, this.threads);
    // The weights the replicas compute with: resent after every update (or outside assignment).
    const current = this.optimizer.current();
    const resend = this.replicas.length > 0 && current !== this.sent;
    if (resend) {
      new Float32Array(this.weights!).set(current.dataSync() as Float32Array);
      this.sent = current;
    }
    const answers = this.replicas.map((r, i) => shards[i + 1].length
      ? this.ask(r, { type: 'step', parts: shards[i + 1], weights: resend })
      : Promise.resolve<FromWorker>({ type: 'done', loss: 0, present: null }));
    // A failed replica must not leave an unhandled rejection while this thread computes.
    answers.forEach((a) => a.catch(() => undefined));
    let own: ReturnType<typeof shardGradient>;
    try {
      own = shardGradient(this.model, this.optimizer.layout, shards[0]);
    } catch (err) {
      await Promise.allSettled(answers);
      throw err;
    }
    const t1 = performance.now();
    let waited = 0;
    let sum = own?.flat;
    let loss = own?.loss ?? 0;
    let present = own?.present;
    try {
      for (const [i, answer] of answers.entries()) {
        const w0 = performance.now();
        const m = await answer;
        waited += performance.now() - w0;
        if (m.type !== 'done' || !m.present) continue;
        const g = tf.tensor1d(new Float32Array(this.replicas[i].grad).slice());
        loss += m.loss;
        present = present ? present.map((p, j) => p || m.present![j]) : m.present;
        if (sum) {
          const prev = sum;
          sum = tf.add(prev, g) as tf.Tensor1D;
          prev.dispose();
          g.dispose();
        } else sum = g;
      }
      if (!sum) throw new Error('ParallelTrainer.step: no shard computed a gradient');
      const a0 = performance.now();
      const gradNorm = applyFlatGradient(this.optimizer, sum, present, opts);
      const t2 = performance.now();
      this.lastTimes = { stepMs: t2 - t0, ownShardMs: t1 - t0, waitMs: waited, applyMs: t2 - a0 };
      return { loss, gradNorm, lr: opts.lr };
    } finally {
      sum?.dispose();
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.replicas.map(async (r) => {
      r.failed ??= new Error('the trainer is closed');
      await r.worker.terminate();
    }));
    this.replicas.length = 0;
  }
}
