/**
 * Continuous batching. Requests wait in a queue; between two decode steps the
 * scheduler admits waiting requests into the running batch (up to `maxBatch`) and
 * retires the finished ones, so a short request never waits for a long one to end.
 * Each request keeps its own sampling parameters, seed, stop strings and token limit.
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
  /** Number of sequences in each of the recent steps (last 1000). */
  recentBatchSizes: number[];
  admitted: number;
  completed: number;
  cancelled: number;
  generatedTokens: number;
  running: number;
  waiting: number;
}

interface Live {
  id: number;
  req: GenerationRequest;
  tokens: number[];
  logprobs: number[];
  tops: TopLogprob[][];
  resolve(r: GenerationResult): void;
  reject(e: Error): void;
  /** How many trailing tokens to decode when looking for stop strings. */
  window: number;
}

export class Scheduler {
  readonly maxBatch: number;
  private readonly backend: Backend;
  private readonly admitWaitMs: number;
  private batch: DecodeBatch | null = null;
  private waiting: Live[] = [];
  private running = new Map<number, Live>();
  private nextId = 1;
  private loop: Promise<void> | null = null;
  private closed = false;
  readonly stats: SchedulerStats = {
    steps: 0, maxRunning: 0, recentBatchSizes: [], admitted: 0, completed: 0, cancelled: 0,
    generatedTokens: 0, running: 0, waiting: 0,
  };

  /**
   * @param admitWaitMs when the batch is empty, wait this long for more requests before
   *   the first step, so requests that arrive together start together.
   */
  constructor(backend: Backend, opts: { maxBatch?: number; admitWaitMs?: number } = {}) {
    this.backend = backend;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 8);
    this.admitWaitMs = opts.admitWaitMs ?? 5;
  }

  submit(req: GenerationRequest): Promise<GenerationResult> {
    if (this.closed) return Promise.reject(new Error('the server is shutting down'));
    return new Promise<GenerationResult>((resolve, reject) => {
      const maxStop = Math.max(0, ...(req.stop ?? []).map((s) => s.length));
      const live: Live = { id: this.nextId++, req, tokens: [], logprobs: [], tops: [], resolve, reject, window: maxStop + 8 };
      if (req.signal?.aborted) return reject(new Error('request cancelled'));
      req.signal?.addEventListener('abort', () => this.cancel(live), { once: true });
      this.waiting.push(live);
      this.stats.waiting = this.waiting.length;
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

  private cancel(live: Live): void {
    const i = this.waiting.indexOf(live);
    if (i >= 0) this.waiting.splice(i, 1);
    else if (this.running.has(live.id)) {
      this.running.delete(live.id);
      this.batch?.remove([live.id]);
    } else return;
    this.stats.cancelled++;
    live.reject(new Error('request cancelled'));
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0 || this.running.size > 0) {
      if (this.running.size === 0 && this.admitWaitMs > 0) await new Promise((r) => setTimeout(r, this.admitWaitMs));
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
        if (this.stats.recentBatchSizes.length > 1000) this.stats.recentBatchSizes.shift();
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
        for (const live of [...this.running.values(), ...this.waiting]) live.reject(e);
        this.running.clear();
        this.waiting = [];
        this.batch?.dispose?.();
        this.batch = null;
      }
      this.stats.running = this.running.size;
      this.stats.waiting = this.waiting.length;
    }
    this.batch?.dispose?.();
    this.batch = null;
  }

  private async admit(): Promise<void> {
    const room = this.maxBatch - this.running.size;
    if (room <= 0 || this.waiting.length === 0) return;
    const joining = this.waiting.splice(0, room);
    this.batch ??= this.backend.newBatch();
    this.stats.admitted += joining.length;
    try {
      const starts: SequenceStartTop[] = joining.map((l) => ({
        id: l.id, promptIds: l.req.promptIds, sampling: l.req.sampling,
        ...(l.req.topLogprobs ? { topLogprobs: l.req.topLogprobs } : {}),
      }));
      await this.batch.add(starts);
    } catch (err) {
      // A prefill that fails fails only the requests joining; the running ones go on.
      const e = err instanceof Error ? err : new Error(String(err));
      for (const live of joining) live.reject(e);
      return;
    }
    for (const live of joining) this.running.set(live.id, live);
    // Zero-token requests end at once.
    const empty = joining.filter((l) => l.req.maxNewTokens <= 0);
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
    return false;
  }

  private finish(live: Live, reason: 'stop' | 'length', matched?: string | number): void {
    this.running.delete(live.id);
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
    live.resolve({
      text,
      tokenIds: tokens,
      logprobs,
      ...(live.req.topLogprobs ? { topLogprobs: tops } : {}),
      promptTokens: live.req.promptIds.length,
      finishReason: reason,
      matchedStop: matched,
    });
  }
}
