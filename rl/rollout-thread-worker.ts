/**
 * The rollout thread (rl/rollout-thread.ts): a replica of the policy on the backend generation
 * picks for its size; takes the policy's weights when they change and answers completions with
 * the in-process engine's `generate()` call (for a slice of a rollout's rows, on their own random streams).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '../engine/tf.ts';
import { initBackendFor } from '../engine/backend.ts';
import { CausalLM } from '../engine/model.ts';
import { completeOnEngine } from '../evaluation/completions.ts';
import type { FromReplica, ReplicaInit, ToReplica } from './rollout-thread.ts';

const port = parentPort!;
const send = (m: FromReplica) => port.postMessage(m);
const init = workerData as ReplicaInit;

let model: CausalLM | undefined;
try {
  const backend = await initBackendFor('generation', init.parameters);
  model = new CausalLM(init.config);
  send({ type: 'ready', backend });
} catch (err) {
  send({ type: 'cannot-start', message: (err as Error).message });
  port.close();
}

if (model) {
  const replica = model;
  port.on('message', (m: ToReplica) => {
    if (m.type === 'weights') {
      // The variables' own layout, as the policy holds them.
      m.names.forEach((name, i) => {
        const v = replica.params.get(name);
        if (!v || v.shape.join() !== m.shapes[i].join()) throw new Error(`rollout thread: weight ${name} does not fit the replica`);
        tf.tidy(() => v.assign(tf.tensor(m.data[i], m.shapes[i])));
      });
    } else {
      try {
        send({ type: 'done', id: m.id, result: completeOnEngine(replica, m.req, init.padTokenId, m.firstRow) });
      } catch (err) {
        send({ type: 'failed', id: m.id, message: (err as Error).message });
      }
    }
  });
}
