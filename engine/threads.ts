/**
 * Starting the engine's worker threads (data-parallel training, the decode threads, the rollout
 * thread, the serving bench's generate() threads): each runs engine/worker-thread.mjs, which loads
 * tsx and then the TypeScript module `workerData.entry` names. A thread's fault and its exit reach
 * one handler, with the reason in the same words for all of them.
 */
import { Worker } from 'node:worker_threads';

export interface ThreadHandlers<From> {
  message(m: From): void;
  /** The thread failed (an uncaught error: "failed: …") or exited ("exited (code N)"); may be called for both. */
  died(why: string): void;
}

export function startEngineThread<From>(workerData: { entry: string }, on: ThreadHandlers<From>): Worker {
  const worker = new Worker(new URL('./worker-thread.mjs', import.meta.url), { workerData });
  worker.on('message', (m: From) => on.message(m));
  worker.on('error', (e) => on.died(`failed: ${e.message}`));
  worker.on('exit', (code) => on.died(`exited (code ${code})`));
  return worker;
}
