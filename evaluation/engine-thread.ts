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
import { existsSync, statSync } from 'node:fs';
import { availableParallelism, freemem } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startEngineThread } from '../engine/threads.ts';
import type { Backend } from './backend.ts';
import { loadEngineBackend, loadEngineTokenizer, type EngineBackendOptions } from './engine-backend.ts';
import {
  emptySchedulerStats, QueueFullError, RECENT_STEPS, refusal, schedulerLimits, type GenerationDelta, type GenerationRequest, type GenerationResult, type SchedulerOptions,
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

/**
 * A scheduler's stats as they cross with each request that ends: the counts, and of the recent
 * batch sizes only those of the steps since the last message (the server's side keeps the last
 * 1000), not all 1000 again each time.
 */
export type WireStats = Omit<SchedulerStats, 'recentBatchSizes'> & { newBatchSizes: number[] };

export type FromThread =
  | { type: 'ready' }
  | { type: 'deltas'; items: [gid: number, index: number, delta: GenerationDelta][] }
  | { type: 'done'; gid: number; results: GenerationResult[]; sid: number; stats: WireStats }
  | { type: 'failed'; gid: number; message: string; retryAfterS?: number; sid: number; stats: WireStats }
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
      let ready = false;
      const message = (m: FromThread) => {
        if (m.type === 'ready') {
          ready = true;
          this.worker = worker;
          // Started, it keeps the process alive only while requests wait on it (hold / settle).
          if (this.busy === 0) worker.unref();
          for (const s of this.schedulers.values()) worker.postMessage({ type: 'scheduler', sid: s.sid, opts: s.options } satisfies ToThread);
          resolve(worker);
        } else if (m.type === 'cannot-start') reject(new Error(m.message));
        else this.receive(m);
      };
      const died = (why: string) => {
        if (!ready) {
          reject(new Error(`the decode thread did not start: ${why}`));
          return;
        }
        if (this.worker !== worker) return;
        this.worker = null;
        const e = new Error(`the decode thread stopped: ${why}; the next request starts a new one`);
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
      const worker = startEngineThread<FromThread>(this.init, { message, died });
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
    return this.maxWaiting - this.waitingAtMost;
  }

  /** At most this many of its sequences wait (the rest of those not ended run). */
  get waitingAtMost(): number {
    return Math.max(0, this.outstanding - this.maxBatch);
  }

  /** Sequences submitted and not ended. */
  get load(): number {
    return this.outstanding;
  }

  observe({ newBatchSizes, ...counts }: WireStats): void {
    const recent = this.stats.recentBatchSizes;
    recent.push(...newBatchSizes);
    if (recent.length > RECENT_STEPS) recent.splice(0, recent.length - RECENT_STEPS);
    this.stats = { ...counts, recentBatchSizes: recent };
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
 * The decode threads of one backend: the first starts with it; each other starts when the load
 * asks for it (every started thread already has `spillAt` sequences), so a server that never has
 * many requests at once runs one thread and pays for no other. A thread that cannot start leaves
 * the others serving, with a warning.
 */
class Replicas {
  /** Whether each thread has started (one that died since starts again with its next request). */
  private readonly started: boolean[];
  /** Threads past this index are not used (one failed to start). */
  private limit: number;
  private growing = false;

  constructor(readonly threads: DecodeThread[], readonly spillAt: number, private readonly warn: (line: string) => void) {
    this.started = threads.map(() => false);
    this.limit = threads.length;
  }

  /** Starts the first thread: a checkpoint that cannot be loaded fails here. */
  async start(): Promise<void> {
    await this.threads[0].alive();
    this.started[0] = true;
  }

  usable(i: number): boolean {
    return this.started[i] && i < this.limit;
  }

  get count(): number {
    return this.threads.filter((_, i) => this.usable(i)).length;
  }

  /** Starts the next thread in the background; it takes requests once its model is loaded. */
  grow(): void {
    const i = this.started.indexOf(false);
    if (this.growing || i < 0 || i >= this.limit) return;
    this.growing = true;
    this.threads[i].alive().then(
      () => {
        this.started[i] = true;
      },
      (err: Error) => {
        this.limit = i;
        this.warn(`warning: decode thread ${i + 1} did not start (${err.message}); serving on ${i}`);
      },
    ).finally(() => {
      this.growing = false;
    });
  }

  close(): Promise<void> {
    return Promise.all(this.threads.map((t) => t.close())).then(() => undefined);
  }
}

/**
 * Several decode threads, each with its own copy of the model and its own Scheduler, as one
 * scheduler: each request (all of its choices together) goes to the started thread with the
 * fewest sequences not ended, and a request that finds every started thread with `spillAt`
 * sequences starts the next one. Each choice samples from its own random stream and every row of
 * a product gets the same arithmetic, so a request gets the same tokens from any thread; its
 * log-probabilities may differ in the last float bits, as they do on one thread with other
 * sequences beside it. The queue limit holds for the threads together; a request must fit whole
 * in one.
 */
class ReplicaScheduler implements Scheduling {
  readonly maxBatch: number;
  private readonly maxWaiting: number;
  private closed = false;

  constructor(private readonly pool: Replicas, private readonly parts: ThreadScheduler[]) {
    this.maxBatch = parts[0].maxBatch * parts.length;
    this.maxWaiting = parts[0].maxWaiting;
  }

  private get usable(): ThreadScheduler[] {
    return this.parts.filter((_, i) => this.pool.usable(i));
  }

  get room(): number {
    const parts = this.usable;
    const waiting = this.parts.reduce((a, r) => a + r.waitingAtMost, 0);
    return Math.max(0, Math.min(this.maxWaiting - waiting, Math.max(...parts.map((r) => r.room))));
  }

  get stats(): SchedulerStats {
    return combineStats(this.parts.map((r) => r.stats));
  }

  submit(req: GenerationRequest): Promise<GenerationResult> {
    return this.submitAll([req], { signal: req.signal }).then((r) => r[0]);
  }

  submitAll(reqs: GenerationRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerationResult[]> {
    const room = this.room;
    if (reqs.length > room) return Promise.reject(refusal(this.closed, opts.signal, reqs.length, room, `room for ${room}`));
    // The least busy started thread that can take the whole request (the first of equals).
    let pick: ThreadScheduler | undefined;
    for (const r of this.usable) if (r.room >= reqs.length && (!pick || r.load < pick.load)) pick = r;
    if (pick!.load + reqs.length > this.pool.spillAt) this.pool.grow();
    return pick!.submitAll(reqs, opts);
  }

  async drain(): Promise<void> {
    this.closed = true;
    await Promise.all(this.parts.map((r) => r.drain()));
  }
}

/** The stats of several schedulers as one: counts added, the largest batch the largest of theirs. */
function combineStats(all: SchedulerStats[]): SchedulerStats {
  const sum = (f: (s: SchedulerStats) => number) => all.reduce((a, s) => a + f(s), 0);
  return {
    steps: sum((s) => s.steps),
    maxRunning: Math.max(...all.map((s) => s.maxRunning)),
    recentBatchSizes: all.flatMap((s) => s.recentBatchSizes).slice(-RECENT_STEPS),
    admitted: sum((s) => s.admitted),
    completed: sum((s) => s.completed),
    cancelled: sum((s) => s.cancelled),
    generatedTokens: sum((s) => s.generatedTokens),
    running: sum((s) => s.running),
    waiting: sum((s) => s.waiting),
  };
}

/** Sequences a decode thread takes before the next one starts: about where a step's cost per token stops falling on a CPU. */
export const DEFAULT_SPILL_AT = 16;

export interface ServingOptions extends EngineBackendOptions {
  /**
   * Decode threads at most, each with a copy of the model (default 1): requests spread over them,
   * so a machine with more cores serves more at once; one request still decodes on one thread.
   */
  replicas?: number;
  /** A thread past the first starts when every started one has this many sequences (default DEFAULT_SPILL_AT). */
  spillAt?: number;
  /** Where a warning goes (a thread past the first that cannot start); default stderr. */
  warn?: (line: string) => void;
}

/**
 * A checkpoint served from decode threads (up to `opts.replicas`, default 1): the tokenizer here,
 * the model and its scheduler in each thread. The first thread is started, and the checkpoint
 * loaded, before this resolves (a broken checkpoint fails here, as loadEngineBackend would); the
 * others when the load asks for them. `close()` stops them.
 */
export async function loadEngineThread(dir: string, opts: ServingOptions = {}): Promise<SchedulingBackend & {
  tokenizer: Tokenizer; replicas: number; startedReplicas(): number; stopThread(): Promise<void>; close(): Promise<void>;
}> {
  const replicas = opts.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`replicas must be a whole number of decode threads, at least 1 (got ${replicas})`);
  const { served } = loadEngineTokenizer(dir, opts);
  const entry = new URL('./engine-thread-worker.ts', import.meta.url).href;
  const threads = Array.from({ length: replicas }, () => new DecodeThread({ entry, dir, name: opts.name }));
  const pool = new Replicas(threads, opts.spillAt ?? DEFAULT_SPILL_AT, opts.warn ?? ((line) => process.stderr.write(line + '\n')));
  try {
    await pool.start();
  } catch (err) {
    await pool.close();
    throw err;
  }
  // Prompt log-probabilities (one forward pass each) go to the first thread.
  return {
    ...served,
    replicas,
    startedReplicas: () => pool.count,
    newBatch() {
      throw new Error('this backend decodes in its thread: ask it for a scheduler()');
    },
    scheduler: (o) => (replicas === 1 ? new ThreadScheduler(threads[0], o) : new ReplicaScheduler(pool, threads.map((t) => new ThreadScheduler(t, o)))),
    promptLogprobs: (ids, top) => threads[0].promptLogprobs(ids, top),
    /** Stops the decode threads at once, as a fault would (requests in them fail; the next request starts the thread again). */
    stopThread: () => Promise.all(threads.map((t) => t.stop())).then(() => undefined),
    close: () => pool.close(),
  };
}

/**
 * The number of decode threads for `replicas` as given to `doctor-agent serve`, `eval` or an eval
 * step: a whole number, or `auto`: one per core, up to 8, and no more copies of the checkpoint in
 * `dir` than half the free memory holds (three times its weights each). Default 1.
 */
export function servingReplicas(replicas: number | 'auto' | undefined, dir: string): number {
  if (replicas === undefined) return 1;
  if (replicas !== 'auto') return replicas;
  const weights = join(dir, 'model.safetensors');
  const bytes = existsSync(weights) ? statSync(weights).size : 0;
  const byMemory = Math.floor(freemem() / 2 / Math.max(1, bytes * 3));
  return Math.max(1, Math.min(availableParallelism(), 8, byMemory));
}

/**
 * The backend `doctor-agent serve` and the eval step serve a checkpoint with: decode threads
 * (`loadEngineThread`), or with `DOCTOR_AGENT_DECODE_THREAD=0` the model on this thread; `replicas`
 * says how many decode threads it may run.
 */
export async function loadServingBackend(dir: string, opts: ServingOptions = {}): Promise<Backend & { replicas: number; close(): Promise<void> | void }> {
  return process.env.DOCTOR_AGENT_DECODE_THREAD === '0' ? { ...(await loadEngineBackend(dir, opts)), replicas: 1 } : loadEngineThread(dir, opts);
}
