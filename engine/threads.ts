/**
 * Starting the engine's worker threads (data-parallel training, the decode threads, the rollout
 * thread, the serving bench's generate() threads): each runs engine/worker-thread.mjs, which loads
 * tsx and then the TypeScript module `workerData.entry` names. A thread's fault and its exit reach
 * one handler, with the reason in the same words for all of them.
 */
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';

/**
 * The old generation each thread's heap starts with, in MB (V8's --initial-old-space-size), unless
 * the process was started with one. Left to itself V8 sizes a new heap's first limit from what
 * survives its first collections, and a decode thread under load could settle on about 28 MB,
 * then run a full collection every half second or so (24-95 in 20 s, against 1-3 with room),
 * which took 4-13% of the server's throughput at 32 concurrent requests. The heap still grows and
 * shrinks as V8 decides afterwards; this is where it starts.
 */
export const THREAD_INITIAL_OLD_SPACE_MB = 64;
let heapFlagSet = false;

function roomyThreadHeaps(): void {
  if (heapFlagSet) return;
  heapFlagSet = true;
  if (process.execArgv.some((a) => a.startsWith('--initial-old-space-size') || a.startsWith('--initial_old_space_size'))) return;
  // Read by V8 when an isolate is created: it applies to the threads started from now on.
  setFlagsFromString(`--initial-old-space-size=${THREAD_INITIAL_OLD_SPACE_MB}`);
}

export interface ThreadHandlers<From> {
  message(m: From): void;
  /** The thread failed (an uncaught error: "failed: …") or exited ("exited (code N)"); may be called for both. */
  died(why: string): void;
}

export function startEngineThread<From>(workerData: { entry: string }, on: ThreadHandlers<From>): Worker {
  roomyThreadHeaps();
  const worker = new Worker(new URL('./worker-thread.mjs', import.meta.url), { workerData });
  worker.on('message', (m: From) => on.message(m));
  worker.on('error', (e) => on.died(`failed: ${e.message}`));
  worker.on('exit', (code) => on.died(`exited (code ${code})`));
  return worker;
}
