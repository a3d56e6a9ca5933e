/**
 * A data-parallel training thread: holds a replica of the model and answers each step with the
 * gradient of its shard (engine/parallel-train.ts), written flat into shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from './tf.ts';
import { initBackend, type BackendName } from './backend.ts';
import { CausalLM } from './model.ts';
import { FlatLayout } from './optim.ts';
import { shardGradient, type FromWorker, type ToWorker, type WorkerInit } from './parallel-train.ts';

const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

try {
  const init = workerData as WorkerInit;
  await initBackend(init.backend as BackendName);
  const model = new CausalLM(init.config);
  const layout = new FlatLayout(model.params);
  const grad = new Float32Array(init.grad);
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'close') {
      port.close();
      return;
    }
    try {
      if (msg.weights) {
        const w = tf.tensor1d(new Float32Array(init.weights).slice());
        layout.scatter(w);
        w.dispose();
      }
      const r = shardGradient(model, layout, msg.parts);
      if (r) {
        grad.set(r.flat.dataSync() as Float32Array);
        r.flat.dispose();
      }
      send({ type: 'done', loss: r?.loss ?? 0, present: r?.present ?? null });
    } catch (err) {
      send({ type: 'error', message: (err as Error).message, stack: (err as Error).stack });
    }
  });
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'error', message: `cannot start: ${(err as Error).message}`, stack: (err as Error).stack });
}
