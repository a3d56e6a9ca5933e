/**
 * A decoding thread (engine/parallel-decode.ts): a replica of the model and a decoder session of
 * its own, driven by the calling thread's messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendName } from './backend.ts';
import { CausalLM } from './model.ts';
import { DecoderSession } from './decoder.ts';
import type { DecoderInit, FromDecoder, ToDecoder } from './parallel-decode.ts';

const port = parentPort!;
const send = (m: FromDecoder) => port.postMessage(m);

try {
  const init = workerData as DecoderInit;
  await initBackend(init.backend as BackendName);
  const model = new CausalLM(init.config);
  model.setWeights(new Map(init.weights));
  let session = new DecoderSession(model, init.session);
  /** A failure of an unanswered message, reported as the next answer. */
  let pending: Error | undefined;
  port.on('message', (msg: ToDecoder) => {
    try {
      if (msg.type === 'remove') {
        session.remove(msg.ids);
        return;
      }
      if (pending) {
        const e = pending;
        pending = undefined;
        throw e;
      }
      if (msg.type === 'reset') {
        session.dispose();
        session = new DecoderSession(model, init.session);
        send({ type: 'done' });
      } else if (msg.type === 'add') {
        session.add(msg.seqs);
        send({ type: 'done' });
      } else {
        send({ type: 'done', tokens: session.step() });
      }
    } catch (err) {
      if (msg.type === 'remove') pending = err as Error;
      else send({ type: 'error', message: (err as Error).message });
    }
  });
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'error', message: `cannot start: ${(err as Error).message}` });
}
