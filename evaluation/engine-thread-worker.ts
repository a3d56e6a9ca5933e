/**
 * The decode thread (evaluation/engine-thread.ts): loads the checkpoint, runs a Scheduler on it
 * for each server that asks, and answers over the thread's port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadEngineBackend } from './engine-backend.ts';
import { QueueFullError, Scheduler, type GenerationDelta, type GenerationRequest } from './scheduler.ts';
import type { FromThread, ThreadInit, ToThread, WireStats } from './engine-thread.ts';

const port = parentPort!;
const send = (m: FromThread) => port.postMessage(m);
const init = workerData as ThreadInit;

const backend = await loadEngineBackend(init.dir, { name: init.name }).catch((err: Error) => {
  send({ type: 'cannot-start', message: err.message });
  port.close();
  return null;
});
if (backend) serve(backend);

function serve(backend: Awaited<ReturnType<typeof loadEngineBackend>>): void {
  const schedulers = new Map<number, Scheduler>();
  const cancels = new Map<number, AbortController>();
  // Per scheduler, its step count when its stats last crossed: the batch sizes since then go next.
  const reported = new Map<number, number>();
  const wireStats = (sid: number, sched: Scheduler): WireStats => {
    const { recentBatchSizes, ...counts } = sched.stats;
    const fresh = Math.min(recentBatchSizes.length, counts.steps - (reported.get(sid) ?? 0));
    reported.set(sid, counts.steps);
    return { ...counts, newBatchSizes: recentBatchSizes.slice(recentBatchSizes.length - fresh) };
  };

  // The streams' new text of a step, sent together once the step's tokens are all accepted.
  let deltas: [number, number, GenerationDelta][] = [];
  const flush = () => {
    if (deltas.length === 0) return;
    send({ type: 'deltas', items: deltas });
    deltas = [];
  };
  const onDelta = (gid: number, k: number) => (d: GenerationDelta) => {
    if (deltas.length === 0) queueMicrotask(flush);
    deltas.push([gid, k, d]);
  };

  port.on('message', (m: ToThread) => {
    switch (m.type) {
      case 'scheduler':
        schedulers.set(m.sid, new Scheduler(backend, m.opts));
        break;
      case 'submit': {
        const sched = schedulers.get(m.sid)!;
        const ac = new AbortController();
        cancels.set(m.gid, ac);
        const reqs: GenerationRequest[] = m.reqs.map(({ stream, ...r }, k) => (stream ? { ...r, onDelta: onDelta(m.gid, k) } : r));
        sched.submitAll(reqs, { signal: ac.signal }).then(
          (results) => {
            flush();
            send({ type: 'done', gid: m.gid, results, sid: m.sid, stats: wireStats(m.sid, sched) });
          },
          (err: Error) => {
            flush();
            send({
              type: 'failed', gid: m.gid, message: err.message, sid: m.sid, stats: wireStats(m.sid, sched),
              ...(err instanceof QueueFullError ? { retryAfterS: err.retryAfterS } : {}),
            });
          },
        ).finally(() => cancels.delete(m.gid));
        break;
      }
      case 'release':
        // Its server has drained it: nothing runs or waits in it.
        schedulers.delete(m.sid);
        reported.delete(m.sid);
        break;
      case 'cancel':
        cancels.get(m.gid)?.abort();
        break;
      case 'logprobs':
        backend.promptLogprobs!(m.promptIds, m.top).then(
          (result) => send({ type: 'reply', rid: m.rid, result }),
          (err: Error) => send({ type: 'reply', rid: m.rid, message: err.message }),
        );
        break;
    }
  });
  send({ type: 'ready' });
}
