/**
 * The engine behind the server on a thread of its own: a worker thread (engine-thread-worker.ts)
 * loads the checkpoint and runs the continuous-batching Scheduler on it, step after step; the
 * server's thread keeps only the tokenizer and does the HTTP, JSON and tokenizing. So neither
 * waits on the other: requests are parsed and answers sent while the model decodes (on a second
 * core where there is one), and /health answers within milliseconds even during a long prefill.
 *
 * Messages cross per request, not per step: a request's sequences go over when it is submitted,
 * its results come back when it ends, and a streamed request's text comes back once a step for all
 * of the step's streams together. Results are those of the in-process Scheduler on the same
 * backend, token for token (the same kernels in the same order).
 *
 * If the thread dies (a fault in the engine, memory), the requests it held fail with the reason
 * and the next request starts a fresh thread. `DOCTOR_AGENT_DECODE_THREAD=0` makes
 * `loadServingBackend` decode on the server's thread instead.
 */
import { Worker } from 'node:worker_threads';
import type { Backend } from './backend.ts';
import { loadEngineBackend, loadEngineTokenizer, type EngineBackendOptions } from './engine-backend.ts';
import {
  emptySchedulerStats, QueueFullError, refusal, schedulerLimits, type GenerationDelta, type GenerationRequest, type GenerationResult, type SchedulerOptions,
  type SchedulerStats, type Scheduling, type SchedulingBackend,
} from './scheduler.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';

/** A request as it crosses to the thread: no signal and no callback, a flag for streaming instead. */
export type WireRequest = Omit<GenerationRequest, 'signal' | 'onDelta'> & { stream: boolean };

export type ToThread =
  | { type: 'scheduler'; sid: number; opts: SchedulerOptions }
  | { type: 'submit'; sid: number; gid: number; reqs: WireRequest[] }
  | { type: 'cancel'; sid: number; gid: number }
  | { type: 'release'; sid: number }
  | { type: 'logprobs'; rid: number; promptIds: number[]; top: number };

export type FromThread =
  | { type: 'ready' }
  | { type: 'deltas'; items: [gid: number, index: number, delta: GenerationDelta][] }
  | { type: 'done'; gid: number; results: GenerationResult[]; sid: number; stats: SchedulerStats }
  | { type: 'failed'; gid: number; message: string; retryAfterS?: number; sid: number; stats: SchedulerStats }
  | { type: 'reply'; rid: number; result?: unknown; message?: string }
  | { type: 'cannot-start'; message: string };

export interface ThreadInit {
  entry: string;
  dir: string;
  name?: string;
}

type PromptLogprobs = NonNullable<Backend['promptLogprobs']>;

interface Pending {
  sched: ThreadScheduler;
  reqs: GenerationRequest[];
  resolve(r: GenerationResult[]): void;
  reject(e: Error): void;
}

/** The main thread's end of a decode thread: starts it (again after a failure), and routes messages. */
class DecodeThread {
  private worker: Worker | null = null;
  private starting: Promise<Worker> | null = null;
  private readonly groups = new Map<number, Pending>();
  private readonly replies = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly schedulers = new Map<number, ThreadScheduler>();
  private nextId = 1;
  /** Requests and replies awaited: the thread keeps the process alive only while there are some. */
  private busy = 0;
  private closed = false;

  constructor(private readonly init: ThreadInit) {}

  /** The running thread, started when there is none (the first time, or after it died). */
  alive(): Promise<Worker> {
    if (this.closed) return Promise.reject(new Error('the server is shutting down'));
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= this.start().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  private start(): Promise<Worker> {
    return new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(new URL('../engine/worker-thread.mjs', import.meta.url), { workerData: this.init });
      worker.unref();
      let ready = false;
      worker.on('message', (m: FromThread) => {
        if (m.type === 'ready') {
          ready = true;
          this.worker = worker;
          for (const s of this.schedulers.values()) worker.postMessage({ type: 'scheduler', sid: s.sid, opts: s.options } satisfies ToThread);
          resolve(worker);
        } else if (m.type === 'cannot-start') reject(new Error(m.message));
        else this.receive(m);
      });
      const died = (why: string) => {
        if (!ready) {
          reject(new Error(`the decode thread did not start: ${why}`));
          return;
        }
        if (this.worker !== worker) return;
        this.worker = null;
        const e = new Error(`the decode thread stopped (${why}); the next request starts a new one`);
        for (const [gid, p] of this.groups) {
          this.groups.delete(gid);
          this.settle();
          p.reject(e);
        }
        for (const [rid, r] of this.replies) {
          this.replies.delete(rid);
          this.settle();
          r.reject(e);
        }
      };
      worker.on('error', (e) => died(e.message));
      worker.on('exit', (code) => died(`exit code ${code}`));
    });
  }

  private receive(m: FromThread): void {
    if (m.type === 'deltas') {
      for (const [gid, k, d] of m.items) this.groups.get(gid)?.reqs[k].onDelta?.(d);
    } else if (m.type === 'done' || m.type === 'failed') {
      this.schedulers.get(m.sid)?.observe(m.stats);
      const p = this.groups.get(m.gid);
      if (!p) return; // cancelled here already
      this.groups.delete(m.gid);
      this.settle();
      if (m.type === 'done') p.resolve(m.results);
      else p.reject(m.retryAfterS !== undefined ? new QueueFullError(m.message, m.retryAfterS) : new Error(m.message));
    } else if (m.type === 'reply') {
      const r = this.replies.get(m.rid);
      if (!r) return;
      this.replies.delete(m.rid);
      this.settle();
      if (m.message !== undefined) r.reject(new Error(m.message));
      else r.resolve(m.result);
    }
  }

  private hold(): void {
    if (this.busy++ === 0) this.worker?.ref();
  }

  private settle(): void {
    if (--this.busy === 0) this.worker?.unref();
  }

  addScheduler(s: ThreadScheduler): void {
    this.schedulers.set(s.sid, s);
    this.worker?.postMessage({ type: 'scheduler', sid: s.sid, opts: s.options } satisfies ToThread);
  }

  /** A scheduler drained for good (its server closed): the thread drops it. */
  removeScheduler(s: ThreadScheduler): void {
    this.schedulers.delete(s.sid);
    this.worker?.postMessage({ type: 'release', sid: s.sid } satisfies ToThread);
  }

  newId(): number {
    return this.nextId++;
  }

  /** The running thread for a message about to be sent (not one that died while this waited). */
  private async current(): Promise<Worker> {
    const worker = await this.alive();
    if (worker !== this.worker) throw new Error('the decode thread stopped; retry the request');
    return worker;
  }

  async submit(sched: ThreadScheduler, reqs: GenerationRequest[], signal?: AbortSignal): Promise<GenerationResult[]> {
    const worker = await this.current();
    signal?.throwIfAborted();
    const gid = this.newId();
    return new Promise<GenerationResult[]>((resolve, reject) => {
      const onAbort = () => {
        if (!this.groups.delete(gid)) return;
        this.settle();
        worker.postMessage({ type: 'cancel', sid: sched.sid, gid } satisfies ToThread);
        reject(new Error('request cancelled'));
      };
      const detach = () => signal?.removeEventListener('abort', onAbort);
      this.groups.set(gid, {
        sched, reqs,
        resolve: (r) => { detach(); resolve(r); },
        reject: (e) => { detach(); reject(e); },
      });
      this.hold();
      signal?.addEventListener('abort', onAbort, { once: true });
      const wire: WireRequest[] = reqs.map(({ signal: _s, onDelta, ...r }) => ({ ...r, stream: onDelta !== undefined }));
      worker.postMessage({ type: 'submit', sid: sched.sid, gid, reqs: wire } satisfies ToThread);
    });
  }

  async promptLogprobs(promptIds: number[], top: number): ReturnType<PromptLogprobs> {
    const worker = await this.current();
    const rid = this.newId();
    return new Promise((resolve, reject) => {
      this.replies.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      this.hold();
      worker.postMessage({ type: 'logprobs', rid, promptIds, top } satisfies ToThread);
    });
  }

  /** Stops the thread now, as a fault in it would: what it holds fails; the next request starts a new one. */
  async stop(): Promise<void> {
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker ?? (this.starting ? await this.starting.catch(() => null) : null);
    this.worker = null;
    await w?.terminate();
  }
}

/** A Scheduler running in the decode thread, as the server sees it. */
class ThreadScheduler implements Scheduling {
  readonly maxBatch: number;
  readonly maxWaiting: number;
  readonly sid: number;
  /** As the thread last reported them (with each request that ended). */
  stats: SchedulerStats = emptySchedulerStats();
  /** Sequences submitted and not ended. */
  private outstanding = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(private readonly thread: DecodeThread, readonly options: SchedulerOptions) {
    this.sid = thread.newId();
    // The limits the thread's Scheduler applies to the same options.
    ({ maxBatch: this.maxBatch, maxWaiting: this.maxWaiting } = schedulerLimits(options));
    thread.addScheduler(this);
  }

  /** At least the room in the thread's queue: at most maxBatch of the sequences not ended are running. */
  get room(): number {
    return this.maxWaiting - Math.max(0, this.outstanding - this.maxBatch);
  }

  observe(stats: SchedulerStats): void {
    this.stats = stats;
  }

  submit(req: GenerationRequest): Promise<GenerationResult> {
    return this.submitAll([req], { signal: req.signal }).then((r) => r[0]);
  }

  submitAll(reqs: GenerationRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerationResult[]> {
    const refused = refusal(this.closed, opts.signal, reqs.length, this.room, `room for ${this.room}`);
    if (refused) return Promise.reject(refused);
    if (reqs.length === 0) return Promise.resolve([]);
    const n = reqs.length;
    this.outstanding += n;
    return this.thread.submit(this, reqs, opts.signal).finally(() => {
      this.outstanding -= n;
      if (this.outstanding === 0) for (const f of this.idle.splice(0)) f();
    });
  }

  async drain(): Promise<void> {
    const first = !this.closed;
    this.closed = true;
    while (this.outstanding > 0) await new Promise<void>((r) => this.idle.push(r));
    if (first) this.thread.removeScheduler(this);
  }
}

/**
 * A checkpoint served from a decode thread: the tokenizer here, the model and its scheduler in
 * the thread (started, and the checkpoint loaded, before this resolves: a broken checkpoint fails
 * here, as loadEngineBackend would). `close()` stops the thread.
 */
export async function loadEngineThread(dir: string, opts: EngineBackendOptions = {}): Promise<SchedulingBackend & { tokenizer: Tokenizer; stopThread(): Promise<void>; close(): Promise<void> }> {
  const { served } = loadEngineTokenizer(dir, opts);
  const thread = new DecodeThread({ entry: new URL('./engine-thread-worker.ts', import.meta.url).href, dir, name: opts.name });
  try {
    await thread.alive();
  } catch (err) {
    await thread.close();
    throw err;
  }
  return {
    ...served,
    newBatch() {
      throw new Error('this backend decodes in its thread: ask it for a scheduler()');
    },
    scheduler: (o) => new ThreadScheduler(thread, o),
    promptLogprobs: (ids, top) => thread.promptLogprobs(ids, top),
    /** Stops the decode thread at once, as a fault in it would (requests in it fail; the next starts a new thread). */
    stopThread: () => thread.stop(),
    close: () => thread.close(),
  };
}

/**
 * The backend `doctor-agent serve` and the eval step serve a checkpoint with: a decode thread
 * (`loadEngineThread`), or with `DOCTOR_AGENT_DECODE_THREAD=0` the model on this thread.
 */
export async function loadServingBackend(dir: string, opts: EngineBackendOptions = {}): Promise<Backend & { close(): Promise<void> | void }> {
  return process.env.DOCTOR_AGENT_DECODE_THREAD === '0' ? loadEngineBackend(dir, opts) : loadEngineThread(dir, opts);
}
