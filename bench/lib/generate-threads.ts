/**
 * The engine's own `generate()` on several threads at once, each with its own copy of a
 * checkpoint and a fixed batch of its own: what decode threads could give together with no HTTP,
 * no scheduler and no clients (the ceiling for `--replicas` on this machine). `generateOnThreads`
 * starts the threads, lets each decode untimed for WARM_MS (a fresh thread runs at a fraction of
 * its speed until V8 has compiled its hot paths, 1.5-2 s of decoding), then times all of them
 * decoding together.
 */
import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads';
import { startEngineThread } from '../../engine/threads.ts';

/** How long each thread decodes before it is timed: past the start-up ramp of a fresh thread. */
const WARM_MS = 3000;

interface Job {
  entry: string;
  dir: string;
  prompts: number[][];
  newTokens: number;
  repeats: number;
}

if (!isMainThread && (workerData as Job)?.prompts) {
  const job = workerData as Job;
  const [{ loadEngineBackend }, { generate }] = await Promise.all([import('../../evaluation/engine-backend.ts'), import('../../engine/generate.ts')]);
  const backend = await loadEngineBackend(job.dir);
  const once = (seed: number) => generate(backend.model, job.prompts, { temperature: 1, maxNewTokens: job.newTokens, seed })
    .tokens.reduce((a, t) => a + t.length, 0);
  for (const t0 = performance.now(); performance.now() - t0 < WARM_MS;) once(0);
  parentPort!.postMessage('ready');
  parentPort!.once('message', () => {
    let tokens = 0;
    for (let r = 0; r < job.repeats; r++) tokens += once(r + 1);
    parentPort!.postMessage(tokens);
  });
}

/** Tokens/s of `threads` threads decoding `prompts` (each thread all of them) `repeats` times together. */
export async function generateOnThreads(dir: string, threads: number, prompts: number[][], newTokens: number, repeats: number): Promise<number> {
  const job: Job = { entry: import.meta.url, dir, prompts, newTokens, repeats };
  const waiting = new Map<Worker, { resolve(m: unknown): void; reject(e: Error): void }>();
  const workers: Worker[] = [];
  for (let i = 0; i < threads; i++) {
    const w: Worker = startEngineThread(job, { message: (m) => waiting.get(w)?.resolve(m), died: (why) => waiting.get(w)?.reject(new Error(`generate() thread ${why}`)) });
    workers.push(w);
  }
  try {
    const next = (w: Worker) => new Promise<unknown>((resolve, reject) => waiting.set(w, { resolve, reject }));
    await Promise.all(workers.map(next));
    const t0 = performance.now();
    const done = workers.map((w) => {
      const p = next(w);
      w.postMessage('go');
      return p;
    });
    const tokens = (await Promise.all(done)).reduce((a: number, t) => a + (t as number), 0);
    return tokens / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
