/**
 * Continuous batching. Requests wait in a queue; between two decode steps the
 * scheduler admits waiting requests into the running batch (up to `maxBatch`) and
 * retires the finished ones, so a short request never waits for a long one to end.
 * Requests submitted together (one HTTP request) form a group; free places go to the
 * groups in turn (round-robin), so a small request is admitted promptly even behind a
 * batch of thousands. The waiting queue is bounded; cancelling a group costs O(its running
 * sequences), its waiting ones are dropped when the round-robin reaches them.
 * Each request keeps its own sampling parameters, seed, stop strings and token limit.
 * A streamed request is told its text as it grows: the text is decoded incrementally
 * and held back by the length of its longest stop string less one, so nothing that a stop
 * string later cuts off is ever sent.
 */
import type { Backend, DecodeBatch, SamplingParams, SequenceStart, StepToken } from './backend.ts';

/** One of the most likely tokens at a step, with its log-probability. */
export interface TopLogprob {
  token: number;
  logprob: number;
}

/**
 * What the scheduler hands a decode batch: a sequence start that may also ask for the
 * `topLogprobs` most likely tokens at each step. A batch that does not know the field
 * ignores it, and the request then gets no alternatives.
 */
export type SequenceStartTop = SequenceStart & { topLogprobs?: number };
/** A step token with the alternatives asked for, most likely first. */
export type StepTokenTop = StepToken & { top?: TopLogprob[] };

export interface GenerationRequest {
  promptIds: number[];
  maxNewTokens: number;
  sampling: SamplingParams;
  /** Generation ends when the text contains one of these; the text is cut before it. */
  stop?: string[];
  /** Extra token ids that end generation (the model's EOS ids always do). */
  stopTokenIds?: number[];
  /** Aborting removes the request from the queue or the batch. */
  signal?: AbortSignal;
  /** Also report the k most likely tokens at each step (0 or absent: none). */
  topLogprobs?: number;
  /**
   * Streaming: called with the text and tokens that became final since the last call, and a
   * last time (with the finish reason) when the sequence ends, before its group resolves.
   */
  onDelta?: (d: GenerationDelta) => void;
}

/** A piece of a streamed sequence: the deltas' texts and tokens add up to the result's. */
export interface GenerationDelta {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  topLogprobs?: TopLogprob[][];
  /** Only on the last delta. */
  finishReason?: 'stop' | 'length';
  matchedStop?: string | number;
}

export interface GenerationResult {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  /** With topLogprobs: the most likely tokens at each step, one list per token in tokenIds. */
  topLogprobs?: TopLogprob[][];
  promptTokens: number;
  finishReason: 'stop' | 'length';
  /** The stop string or token id that ended it, if any. */
  matchedStop?: string | number;
}

export interface SchedulerStats {
  steps: number;
  /** Largest number of sequences decoded in one step. */
  maxRunning: number;
  /** Number of sequences in each of the recent steps (the last RECENT_STEPS). */
  recentBatchSizes: number[];
  admitted: number;
  completed: number;
  cancelled: number;
  generatedTokens: number;
  running: number;
  waiting: number;
}

/** How many steps' batch sizes `SchedulerStats.recentBatchSizes` keeps. */
export const RECENT_STEPS = 1000;

/** Stats before the first request. */
export function emptySchedulerStats(): SchedulerStats {
  return {
    steps: 0, maxRunning: 0, recentBatchSizes: [], admitted: 0, completed: 0, cancelled: 0,
    generatedTokens: 0, running: 0, waiting: 0,
  };
}

/** The waiting queue is full: the request is refused; the client may retry after `retryAfterS` seconds. */
export class QueueFullError extends Error {
  constructor(message: string, readonly retryAfterS: number) {
    super(message);
    this.name = 'QueueFullError';
  }
}

/**
 * Requests submitted together (one HTTP request): they succeed or fail together, are
 * cancelled together in O(sequences running), and take one turn each in round-robin
 * admission, so a large batch cannot hold a small request back.
 */
interface Group {
  reqs: GenerationRequest[];
  /** Index in `reqs` of the next request to admit. */
  next: number;
  /** Ids of this group's sequences in the running batch. */
  running: Set<number>;
  results: GenerationResult[];
  /** Requests not finished yet. */
  left: number;
  done: boolean;
  resolve(r: GenerationResult[]): void;
  reject(e: Error): void;
  /** Detaches the abort listener. */
  detach(): void;
}

interface Live {
  id: number;
  group: Group;
  /** Position of the request in its group. */
  index: number;
  req: GenerationRequest;
  tokens: number[];
  logprobs: number[];
  tops: TopLogprob[][];
  /** How many trailing tokens to decode when looking for stop strings. */
  window: number;
  /** For a streamed request: what was decoded and sent so far. */
  stream?: StreamState;
}

interface StreamState {
  /** The text decoded so far (incrementally: a window of the last tokens is decoded each step). */
  text: string;
  /** The window: tokens [prefix, read) gave the text already counted, [read, ...) are new. */
  prefix: number;
  read: number;
  /** Length of `text` once each token was decoded (tokens of a character not yet complete have none). */
  ends: number[];
  /** Characters held back: the longest stop string less one. */
  hold: number;
  sentTokens: number;
  sentChars: number;
}

/** A first-in first-out queue with O(1) push and shift. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drain(): T[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}

export interface SchedulerOptions {
  maxBatch?: number;
  /**
   * When the batch is empty, how long at most it waits for more requests before the first step,
   * so that requests arriving together start together: it waits while they keep arriving (each
   * turn of the event loop bringing more), so a lone request starts at once. Default 5.
   */
  admitWaitMs?: number;
  /**
   * While the batch runs, requests that would not fill its free places wait up to this many steps
   * for others, so that they are prefilled together (one forward pass instead of one each).
   * Default 4; 0 admits each at the next step.
   */
  joinWaitSteps?: number;
  /** Most sequences waiting for a place in the batch; past it a submission fails with QueueFullError. */
  maxWaiting?: number;
}

/** The batch and waiting-queue sizes a scheduler applies to its options (defaults 8 and unbounded). */
export function schedulerLimits(opts: SchedulerOptions): { maxBatch: number; maxWaiting: number } {
  return { maxBatch: Math.max(1, opts.maxBatch ?? 8), maxWaiting: Math.max(1, opts.maxWaiting ?? Number.MAX_SAFE_INTEGER) };
}

/**
 * What the server asks of a scheduler: the in-process `Scheduler`, or one running with the model
 * in a decode thread (evaluation/engine-thread.ts), which a backend provides through `scheduler()`.
 */
export interface Scheduling {
  readonly maxBatch: number;
  /** Room left in the waiting queue (with a decode thread an estimate, never below the true room: the thread refuses what does not fit). */
  readonly room: number;
  readonly stats: SchedulerStats;
  submit(req: GenerationRequest): Promise<GenerationResult>;
  submitAll(reqs: GenerationRequest[], opts?: { signal?: AbortSignal }): Promise<GenerationResult[]>;
  /** Stops admitting new work; resolves when every admitted and waiting request is done. */
  drain(): Promise<void>;
}

/**
 * Why a submission of `asked` sequences is refused before it is queued (the scheduler is closing,
 * the request already cancelled, no room: QueueFullError), or undefined; `taken` says how full.
 */
export function refusal(closed: boolean, signal: AbortSignal | undefined, asked: number, room: number, taken: string): Error | undefined {
  if (closed) return new Error('the server is shutting down');
  if (signal?.aborted) return new Error('request cancelled');
  if (asked > room) return new QueueFullError(`the waiting queue is full (${taken}, ${asked} asked): retry later`, 1);
  return undefined;
}

/**
 * A backend whose model decodes elsewhere (a decode thread, evaluation/engine-thread.ts) runs its
 * scheduler there too: the server asks it for one instead of building a Scheduler on newBatch.
 */
export interface SchedulingBackend extends Backend {
  scheduler(opts: SchedulerOptions): Scheduling;
}

/** The scheduler for a backend: its own when it runs one, else a Scheduler here. */
export function schedulerFor(backend: Backend, opts: SchedulerOptions): Scheduling {
  return 'scheduler' in backend && typeof backend.scheduler === 'function' ? (backend as SchedulingBackend).scheduler(opts) : new Scheduler(backend, opts);
}

export class Scheduler implements Scheduling {
  readonly maxBatch: number;
  readonly maxWaiting: number;
  private readonly backend: Backend;
  private readonly admitWaitMs: number;
  private readonly joinWaitSteps: number;
  /** The step count when the requests now waiting began to wait (the oldest of them). */
  private waitingSince = 0;
  private batch: DecodeBatch | null = null;
  /** Groups with requests still to admit, in round-robin order (cancelled ones are dropped when reached). */
  private ring = new Fifo<Group>();
  /** Requests waiting to be admitted, over the groups not done. */
  private waitingCount = 0;
  private running = new Map<number, Live>();
  private nextId = 1;
  /** Requests submitted so far: how an empty batch tells that more are arriving. */
  private arrived = 0;
  private loop: Promise<void> | null = null;
  private closed = false;
  readonly stats: SchedulerStats = emptySchedulerStats();

  constructor(backend: Backend, opts: SchedulerOptions = {}) {
    this.backend = backend;
    ({ maxBatch: this.maxBatch, maxWaiting: this.maxWaiting } = schedulerLimits(opts));
    this.admitWaitMs = opts.admitWaitMs ?? 5;
    this.joinWaitSteps = Math.max(0, opts.joinWaitSteps ?? 4);
  }

  /** Room left in the waiting queue. */
  get room(): number {
    return this.maxWaiting - this.waitingCount;
  }

  submit(req: GenerationRequest): Promise<GenerationResult> {
    return this.submitAll([req], { signal: req.signal }).then((r) => r[0]);
  }

  /**
   * Submits requests that belong together (e.g. one /generate batch). They resolve together,
   * in order; if one fails, or `signal` aborts, all of them fail and leave the queue and the
   * batch. Refused with QueueFullError when they do not fit in the waiting queue.
   */
  submitAll(reqs: GenerationRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerationResult[]> {
    const refused = refusal(this.closed, opts.signal, reqs.length, this.room, `${this.waitingCount} of ${this.maxWaiting} places taken`);
    if (refused) return Promise.reject(refused);
    if (reqs.length === 0) return Promise.resolve([]);
    return new Promise<GenerationResult[]>((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = () => this.endGroup(group, new Error('request cancelled'), true);
      const group: Group = {
        reqs, next: 0, running: new Set(), results: new Array(reqs.length), left: reqs.length, done: false,
        resolve, reject, detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.waitingCount === 0) this.waitingSince = this.stats.steps;
      this.waitingCount += reqs.length;
      this.arrived += reqs.length;
      this.stats.waiting = this.waitingCount;
      this.ring.push(group);
      this.loop ??= this.run().finally(() => {
        this.loop = null;
      });
    });
  }

  /** Stops admitting new work; resolves when every admitted and waiting request is done. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.loop) await this.loop;
  }

  /** Fails a whole group: its waiting requests are dropped (lazily, from the ring) and its running ones leave the batch. */
  private endGroup(group: Group, err: Error, cancelled = false): void {
    if (group.done) return;
    group.done = true;
    group.detach();
    const waiting = group.reqs.length - group.next;
    this.waitingCount -= waiting;
    const ids = [...group.running];
    for (const id of ids) this.running.delete(id);
    if (ids.length) this.batch?.remove(ids);
    if (cancelled) this.stats.cancelled += waiting + ids.length;
    group.running.clear();
    group.reqs = [];
    group.results = [];
    this.stats.waiting = this.waitingCount;
    this.stats.running = this.running.size;
    group.reject(err);
  }

  private async run(): Promise<void> {
    while (this.waitingCount > 0 || this.running.size > 0) {
      // An empty batch gathers the requests arriving together, unless those waiting already fill it.
      if (this.running.size === 0 && this.admitWaitMs > 0 && this.waitingCount < this.maxBatch) await this.gather();
      // Let the event loop run between steps (a backend may never yield on its own):
      // new requests arrive over HTTP and join at the next step.
      else await new Promise((r) => setImmediate(r));
      try {
        await this.admit();
        if (this.running.size === 0) continue;
        const tokens = await this.batch!.step();
        this.stats.steps++;
        this.stats.maxRunning = Math.max(this.stats.maxRunning, tokens.length);
        this.stats.recentBatchSizes.push(tokens.length);
        if (this.stats.recentBatchSizes.length > RECENT_STEPS) this.stats.recentBatchSizes.shift();
        const done: number[] = [];
        for (const t of tokens) {
          const live = this.running.get(t.id);
          if (!live) continue; // cancelled during the step
          this.stats.generatedTokens++;
          if (this.accept(live, t)) done.push(t.id);
        }
        if (done.length) this.batch!.remove(done);
      } catch (err) {
        // A backend failure fails every request in flight; the next request starts a fresh batch.
        const e = err instanceof Error ? err : new Error(String(err));
        const groups = new Set<Group>([...this.running.values()].map((l) => l.group));
        for (const g of this.ring.drain()) groups.add(g);
        this.running.clear();
        // The failed batch is dropped whole before the groups end, so nothing more is asked of it.
        const failed = this.batch;
        this.batch = null;
        for (const g of groups) this.endGroup(g, e);
        this.waitingCount = 0;
        failed?.dispose?.();
      }
      if (this.waitingCount === 0) this.ring.drain();
      this.stats.running = this.running.size;
      this.stats.waiting = this.waitingCount;
    }
    this.batch?.dispose?.();
    this.batch = null;
  }

  /**
   * Before an empty batch's first step: yields to the event loop a turn at a time while each turn
   * brings more requests, until those waiting fill the batch or `admitWaitMs` has passed. A turn
   * that brings none ends the wait, so a lone request is not held: on a server that is not busy,
   * a fixed wait would add itself to every request's time to first token. A request arriving
   * after the first step joins the running batch (see `admit`).
   */
  private async gather(): Promise<void> {
    const t0 = performance.now();
    let seen: number;
    do {
      seen = this.arrived;
      await new Promise((r) => setImmediate(r));
    } while (this.arrived !== seen && this.waitingCount < this.maxBatch && performance.now() - t0 < this.admitWaitMs);
  }

  /**
   * Fills the free places of the batch, one request per group in turn. While the batch runs,
   * requests too few to fill it wait up to `joinWaitSteps` steps for more to prefill with.
   */
  private async admit(): Promise<void> {
    let room = this.maxBatch - this.running.size;
    if (this.running.size > 0 && this.waitingCount < room && this.stats.steps - this.waitingSince < this.joinWaitSteps) return;
    const joining: Live[] = [];
    while (room > 0 && this.ring.length > 0) {
      const group = this.ring.shift()!;
      if (group.done || group.next >= group.reqs.length) continue;
      const index = group.next++;
      const req = group.reqs[index];
      const maxStop = Math.max(0, ...(req.stop ?? []).map((s) => s.length));
      const stream: StreamState | undefined = req.onDelta
        ? { text: '', prefix: 0, read: 0, ends: [], hold: Math.max(0, maxStop - 1), sentTokens: 0, sentChars: 0 }
        : undefined;
      joining.push({ id: this.nextId++, group, index, req, tokens: [], logprobs: [], tops: [], window: maxStop + 8, stream });
      this.waitingCount--;
      room--;
      if (group.next < group.reqs.length) this.ring.push(group);
    }
    this.waitingSince = this.stats.steps;
    if (joining.length === 0) return;
    this.batch ??= this.backend.newBatch();
    this.stats.admitted += joining.length;
    try {
      const starts: SequenceStartTop[] = joining.map((l) => ({
        id: l.id, promptIds: l.req.promptIds, sampling: l.req.sampling,
        ...(l.req.topLogprobs ? { topLogprobs: l.req.topLogprobs } : {}),
      }));
      await this.batch.add(starts);
    } catch (err) {
      // A prefill that fails fails only the requests joining (and their groups); the running ones go on.
      const e = err instanceof Error ? err : new Error(String(err));
      for (const live of joining) this.endGroup(live.group, e);
      return;
    }
    // A group cancelled during the prefill: its sequences leave at once.
    const gone = joining.filter((l) => l.group.done);
    if (gone.length) this.batch.remove(gone.map((l) => l.id));
    const admitted = joining.filter((l) => !l.group.done);
    for (const live of admitted) {
      this.running.set(live.id, live);
      live.group.running.add(live.id);
    }
    // Zero-token requests end at once.
    const empty = admitted.filter((l) => l.req.maxNewTokens <= 0);
    for (const l of empty) this.finish(l, 'length');
    if (empty.length) this.batch.remove(empty.map((l) => l.id));
  }

  /** Appends a token; returns true when the sequence is finished. */
  private accept(live: Live, { token, logprob, top }: StepTokenTop): boolean {
    const { req } = live;
    if (this.backend.eosTokenIds.includes(token) || req.stopTokenIds?.includes(token)) {
      this.finish(live, 'stop', token);
      return true;
    }
    live.tokens.push(token);
    live.logprobs.push(logprob);
    if (req.topLogprobs) live.tops.push(top ?? []);
    if (req.stop?.length) {
      const tail = this.backend.decode(live.tokens.slice(-live.window));
      const hit = req.stop.find((s) => s && tail.includes(s));
      if (hit !== undefined) {
        this.finish(live, 'stop', hit);
        return true;
      }
    }
    if (live.tokens.length >= req.maxNewTokens) {
      this.finish(live, 'length');
      return true;
    }
    if (live.stream) this.emit(live, live.stream);
    return false;
  }

  /** Sends a streamed sequence the text and tokens that no stop string can cut off any more. */
  private emit(live: Live, st: StreamState): void {
    const { tokens } = live;
    const before = this.backend.decode(tokens.slice(st.prefix, st.read));
    const now = this.backend.decode(tokens.slice(st.prefix));
    // A token that ends inside a multi-byte character decodes to U+FFFD: wait for the rest.
    if (now.length > before.length && !now.endsWith('\uFFFD')) {
      st.text += now.slice(before.length);
      st.prefix = st.read;
      st.read = tokens.length;
      while (st.ends.length < tokens.length) st.ends.push(st.text.length);
    }
    const safe = st.text.length - st.hold;
    let k = st.sentTokens;
    while (k < st.ends.length && st.ends[k] <= safe) k++;
    if (k === st.sentTokens) return;
    const chars = st.ends[k - 1];
    const delta: GenerationDelta = {
      text: st.text.slice(st.sentChars, chars),
      tokenIds: tokens.slice(st.sentTokens, k),
      logprobs: live.logprobs.slice(st.sentTokens, k),
      ...(live.req.topLogprobs ? { topLogprobs: live.tops.slice(st.sentTokens, k) } : {}),
    };
    st.sentTokens = k;
    st.sentChars = chars;
    live.req.onDelta!(delta);
  }

  private finish(live: Live, reason: 'stop' | 'length', matched?: string | number): void {
    this.running.delete(live.id);
    live.group.running.delete(live.id);
    this.stats.completed++;
    let text = this.backend.decode(live.tokens);
    let { tokens, logprobs, tops } = live;
    if (typeof matched === 'string') {
      const at = text.indexOf(matched);
      if (at >= 0) text = text.slice(0, at);
      // Keep only the tokens whose text lies before the stop string.
      let keep = tokens.length;
      while (keep > 0 && this.backend.decode(tokens.slice(0, keep)).length > text.length) keep--;
      tokens = tokens.slice(0, keep);
      logprobs = logprobs.slice(0, keep);
      tops = tops.slice(0, keep);
    }
    const { group } = live;
    const result: GenerationResult = {
      text,
      tokenIds: tokens,
      logprobs,
      ...(live.req.topLogprobs ? { topLogprobs: tops } : {}),
      promptTokens: live.req.promptIds.length,
      finishReason: reason,
      matchedStop: matched,
    };
    group.results[live.index] = result;
    const st = live.stream;
    if (st) {
      // The rest: what was held back, up to the stop string (the text sent is a prefix of the result's).
      const sentText = st.text.slice(0, st.sentChars);
      live.req.onDelta!({
        text: text.startsWith(sentText) ? text.slice(st.sentChars) : '',
        tokenIds: tokens.slice(st.sentTokens),
        logprobs: logprobs.slice(st.sentTokens),
        ...(live.req.topLogprobs ? { topLogprobs: tops.slice(st.sentTokens) } : {}),
        finishReason: reason,
        matchedStop: matched,
      });
    }
    if (--group.left === 0) {
      group.done = true;
      group.detach();
      group.resolve(group.results);
    }
  }
}
