/**
 * Decoding on several cores: a session whose sequences are spread over the calling thread and
 * worker threads (engine/decode-worker.ts), each with a replica of the model and a decoder
 * session of its own (engine/decoder.ts). A step steps every part at once and returns all their
 * tokens; a sequence joins the part with the fewest sequences and stays there until it leaves.
 *
 * Each sequence samples from its own stream and its rows never mix with others in a kernel that
 * sums across rows, so it decodes to the same tokens whichever part holds it (the tests check it
 * against a one-thread session). For backends whose kernels run on one thread (wasm, cpu): on
 * tensorflow the kernels already use every core.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from './tf.ts';
import type { ModelConfig } from './config.ts';
import { DecoderSession, type SessionOptions, type SessionSequence, type SessionToken } from './decoder.ts';
import type { CausalLM } from './model.ts';

/** Most threads the default uses. */
const DEFAULT_MAX_THREADS = 4;

/**
 * Threads for decoding on a single-threaded backend: DOCTOR_AGENT_DECODE_THREADS when set
 * (1: none besides the calling one), else the cores available, at most 4.
 */
export function decodeThreads(): number {
  const raw = process.env.DOCTOR_AGENT_DECODE_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) {
      throw new Error(`DOCTOR_AGENT_DECODE_THREADS=${raw} is not a thread count: use a whole number from 1 (decode on the calling thread only) up`);
    }
    return n;
  }
  return Math.max(1, Math.min(DEFAULT_MAX_THREADS, availableParallelism()));
}

/** What the calling thread sends a decoding thread. */
export type ToDecoder =
  | { type: 'reset' }
  | { type: 'add'; seqs: SessionSequence[] }
  | { type: 'remove'; ids: number[] }
  | { type: 'step' };
/**
 * What a decoding thread answers: 'reset', 'add' and 'step' are answered, in order; 'remove' is
 * not (a failure in it is the answer to the next message).
 */
export type FromDecoder =
  | { type: 'ready' }
  | { type: 'done'; tokens?: SessionToken[] }
  | { type: 'error'; message: string };

/** The start-up data of a decoding thread. */
export interface DecoderInit {
  entry: string;
  backend: string;
  config: ModelConfig;
  /** The weights in the files' layout (CausalLM.getWeights). */
  weights: [string, { shape: number[]; data: Float32Array }][];
  session: SessionOptions;
}

/** A worker thread holding a replica; one request in flight at a time, answered in order. */
class DecoderThread {
  private readonly queue: { resolve(m: FromDecoder): void; reject(e: Error): void }[] = [];
  private failed?: Error;
  private closing = false;

  private constructor(private readonly worker: Worker, readonly index: number) {
    // Idle threads do not keep the process alive (a backend left open does not hang it); one
    // with a request in flight does.
    worker.unref();
    worker.on('message', (m: FromDecoder) => {
      const p = this.queue.shift();
      if (this.queue.length === 0 && !this.closing) worker.unref();
      if (m.type === 'error') p?.reject(new Error(`decoding thread ${index}: ${m.message}`));
      else p?.resolve(m);
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const p of this.queue.splice(0)) p.reject(e);
    };
    worker.on('error', (e) => fail(new Error(`decoding thread ${index} failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`decoding thread ${index} exited (code ${code})`)));
  }

  static async start(init: DecoderInit, index: number): Promise<DecoderThread> {
    const worker = new Worker(new URL('./worker-thread.mjs', import.meta.url), { workerData: init });
    const t = new DecoderThread(worker, index);
    worker.ref();
    await new Promise<FromDecoder>((resolve, reject) => t.queue.push({ resolve, reject }));
    return t;
  }

  /** Sends a message that is answered. */
  ask(msg: ToDecoder): Promise<FromDecoder> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<FromDecoder>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.worker.ref();
      this.worker.postMessage(msg);
    });
  }

  /** Sends a message that is not answered (an error in it surfaces at the next answered one). */
  tell(msg: ToDecoder): void {
    if (!this.failed) this.worker.postMessage(msg);
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the decoding threads are closed');
    // Held while it stops (an unreferenced thread's exit does not keep the loop waiting), even
    // when an answer still comes in.
    this.closing = true;
    this.worker.ref();
    await this.worker.terminate();
  }
}

/**
 * Replicas of a model in worker threads, for parallel decoder sessions (`session()`). Start it once
 * per loaded model; close it when the model goes.
 */
export class DecodeThreads {
  private constructor(private readonly model: CausalLM, private readonly threads: DecoderThread[], private readonly opts: SessionOptions) {}

  /** Starts threads - 1 worker threads (none for threads <= 1) with replicas of the model. */
  static async start(model: CausalLM, threads: number, opts: SessionOptions = {}): Promise<DecodeThreads> {
    const started: DecoderThread[] = [];
    if (threads > 1) {
      const init: DecoderInit = {
        entry: new URL('./decode-worker.ts', import.meta.url).href,
        backend: tf.getBackend(), config: model.config, weights: [...model.getWeights()], session: opts,
      };
      try {
        for (let i = 1; i < threads; i++) started.push(await DecoderThread.start(init, i));
      } catch (err) {
        await Promise.all(started.map((t) => t.close()));
        throw err;
      }
    }
    return new DecodeThreads(model, started, opts);
  }

  /** Threads a session decodes on, the calling one included. */
  get count(): number {
    return this.threads.length + 1;
  }

  /**
   * A new session over every thread. One at a time: a new one resets the threads' sessions, so
   * dispose of the previous first.
   */
  session(): ParallelDecoderSession {
    return new ParallelDecoderSession(new DecoderSession(this.model, this.opts), this.threads);
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}

/** A decoder session spread over threads (see the module's comment); the API of DecoderSession, with step() async. */
export class ParallelDecoderSession {
  /** Sequences per part (part 0: the calling thread). */
  private readonly counts: number[];
  /** The part of each sequence. */
  private readonly owner = new Map<number, number>();
  /** Replies of unanswered 'reset's, awaited before the parts are used. */
  private ready: Promise<unknown>;

  constructor(private readonly local: DecoderSession, private readonly threads: DecoderThread[]) {
    this.counts = new Array(threads.length + 1).fill(0);
    this.ready = Promise.all(threads.map((t) => t.ask({ type: 'reset' })));
    this.ready.catch(() => undefined);
  }

  /** Sequences in the session. */
  get size(): number {
    return this.owner.size;
  }

  /** Prefills sequences, each in the part with the fewest; they get their first token from the next `step()`. */
  async add(seqs: SessionSequence[]): Promise<void> {
    await this.ready;
    const byPart: SessionSequence[][] = this.counts.map(() => []);
    for (const s of seqs) {
      if (this.owner.has(s.id)) throw new Error(`sequence ${s.id} is already in the session`);
      let best = 0;
      for (let p = 1; p < this.counts.length; p++) if (this.counts[p] < this.counts[best]) best = p;
      byPart[best].push(s);
      this.counts[best]++;
      this.owner.set(s.id, best);
    }
    const undo = () => {
      for (const s of seqs) {
        const p = this.owner.get(s.id);
        if (p !== undefined) this.counts[p]--;
        this.owner.delete(s.id);
      }
    };
    const remote = this.threads.map((t, i) => (byPart[i + 1].length ? t.ask({ type: 'add', seqs: byPart[i + 1] }) : undefined));
    remote.forEach((r) => r?.catch(() => undefined));
    try {
      this.local.add(byPart[0]);
    } catch (err) {
      // The other parts' prefills of this call are taken back once they are in.
      await Promise.allSettled(remote);
      this.threads.forEach((t, i) => { if (byPart[i + 1].length) t.tell({ type: 'remove', ids: byPart[i + 1].map((s) => s.id) }); });
      undo();
      throw err;
    }
    const results = await Promise.allSettled(remote);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.local.remove(byPart[0].map((s) => s.id));
      this.threads.forEach((t, i) => { if (byPart[i + 1].length && results[i].status === 'fulfilled') t.tell({ type: 'remove', ids: byPart[i + 1].map((s) => s.id) }); });
      undo();
      throw failed.reason;
    }
  }

  /** Drops sequences; unknown ids are ignored. */
  remove(ids: number[]): void {
    const byPart: number[][] = this.counts.map(() => []);
    for (const id of ids) {
      const p = this.owner.get(id);
      if (p === undefined) continue;
      byPart[p].push(id);
      this.counts[p]--;
      this.owner.delete(id);
    }
    if (byPart[0].length) this.local.remove(byPart[0]);
    this.threads.forEach((t, i) => { if (byPart[i + 1].length) t.tell({ type: 'remove', ids: byPart[i + 1] }); });
  }

  /** One token for every sequence, from every part at once. */
  async step(): Promise<SessionToken[]> {
    await this.ready;
    const remote = this.threads.map((t, i) => (this.counts[i + 1] > 0 ? t.ask({ type: 'step' }) : undefined));
    remote.forEach((r) => r?.catch(() => undefined));
    let own: SessionToken[];
    try {
      own = this.counts[0] > 0 ? this.local.step() : [];
    } catch (err) {
      await Promise.allSettled(remote);
      throw err;
    }
    const out = [...own];
    for (const r of remote) {
      if (!r) continue;
      const m = await r;
      if (m.type === 'done' && m.tokens) out.push(...m.tokens);
    }
    return out;
  }

  /** Frees the session here and empties the threads' sessions. */
  dispose(): void {
    this.local.dispose();
    this.owner.clear();
    this.counts.fill(0);
    for (const t of this.threads) t.ask({ type: 'reset' }).catch(() => undefined);
  }
}
