/**
 * Rollouts sampled on a replica of the policy in a worker thread, on the backend generation picks
 * for the model's size (wasm up to WASM_GENERATION_MAX_PARAMS), while the policy trains on
 * tensorflow in this thread.
 *
 * RL runs on tensorflow: its log-prob passes over whole sequences and its updates are training.
 * But sampling is a few hundred decoding steps of one token a row, and for a small model each
 * step is a hundred small kernels, each a call into TensorFlow's runtime; on wasm the same steps
 * run about three times faster (engine/README, "Backend per workload"). So before each rollout
 * whose weights changed, the policy's weights (as the variables hold them) are copied to the
 * replica, and the thread runs the same `generate()` call the in-process engine would
 * (evaluation/completions.ts `completeOnEngine`): the same seeds and rows, its logits those of
 * the other backend (equal up to float32 rounding, so now and then another token is drawn).
 * Deterministic for given weights and seeds, so a resumed run samples what the first run did.
 *
 * `rolloutThread` answers undefined where it does not apply (the policy not on tensorflow, a model
 * over the size limit, `DOCTOR_AGENT_ROLLOUT_THREAD=0`); a replica that cannot start (no wasm
 * backend) fails its first rollout with the reason, and the loop samples in-process from then on.
 */
import type { Worker } from 'node:worker_threads';
import { startEngineThread } from '../engine/threads.ts';
import * as tf from '../engine/tf.ts';
import { WASM_GENERATION_MAX_PARAMS } from '../engine/backend.ts';
import type { CausalLM } from '../engine/model.ts';
import type { ModelConfig } from '../engine/config.ts';
import type { TokenCompletion, TokenCompletionRequest, TokenCompletions } from '../evaluation/backend.ts';

export type ToReplica =
  | { type: 'weights'; names: string[]; shapes: number[][]; data: Float32Array[] }
  | { type: 'complete'; id: number; req: TokenCompletionRequest };
export type FromReplica =
  | { type: 'ready'; backend: string }
  | { type: 'cannot-start'; message: string }
  | { type: 'done'; id: number; result: TokenCompletion[] }
  | { type: 'failed'; id: number; message: string };
export interface ReplicaInit {
  entry: string;
  config: ModelConfig;
  parameters: number;
  padTokenId?: number;
}

export interface RolloutThread extends TokenCompletions {
  /** The backend the replica decodes on (known once it started). */
  readonly backend: () => string | undefined;
  close(): Promise<void>;
}

/** Whether rollouts of this policy go to a replica thread (see the file comment). */
export function usesRolloutThread(policy: CausalLM): boolean {
  return process.env.DOCTOR_AGENT_ROLLOUT_THREAD !== '0' && tf.getBackend() === 'tensorflow' && policy.numParams() <= WASM_GENERATION_MAX_PARAMS;
}

export function rolloutThread(policy: CausalLM, opts: { padTokenId?: number } = {}): RolloutThread | undefined {
  if (!usesRolloutThread(policy)) return undefined;
  const init: ReplicaInit = {
    entry: new URL('./rollout-thread-worker.ts', import.meta.url).href,
    config: policy.config, parameters: policy.numParams(), ...(opts.padTokenId !== undefined ? { padTokenId: opts.padTokenId } : {}),
  };
  const pending = new Map<number, { resolve(r: TokenCompletion[]): void; reject(e: Error): void }>();
  let nextId = 1;
  let backend: string | undefined;
  let failure: Error | undefined;
  let worker!: Worker;
  const ready = new Promise<void>((resolve, reject) => {
    // Before it is ready, the start fails; after, what it holds fails, and every later rollout.
    const died = (why: string) => {
      const e = new Error(`the rollout thread ${why}`);
      reject(e);
      failure ??= e;
      for (const p of pending.values()) p.reject(failure);
      pending.clear();
    };
    const message = (m: FromReplica) => {
      if (m.type === 'ready') {
        backend = m.backend;
        resolve();
      } else if (m.type === 'cannot-start') {
        reject(new Error(`the rollout thread did not start: ${m.message}`));
      } else {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (pending.size === 0) worker.unref();
        if (m.type === 'done') p.resolve(m.result);
        else p.reject(new Error(`the rollout thread failed: ${m.message}`));
      }
    };
    worker = startEngineThread<FromReplica>(init, { message, died });
    worker.unref();
  });
  ready.catch(() => {}); // awaited by each rollout
  // The weights the replica holds: the policy's variables' data when they were sent (an update
  // assigns new data, so a changed variable has another dataId).
  let sent: object[] = [];
  const syncWeights = () => {
    const vars = [...policy.params.values()];
    if (vars.length === sent.length && vars.every((v, i) => v.dataId === sent[i])) return;
    const data = vars.map((v) => (v.dataSync() as Float32Array).slice());
    const msg: ToReplica = { type: 'weights', names: [...policy.params.keys()], shapes: vars.map((v) => v.shape), data };
    worker.postMessage(msg, data.map((d) => d.buffer));
    sent = vars.map((v) => v.dataId);
  };
  return {
    where: 'a replica of the policy in a rollout thread',
    backend: () => backend,
    async complete(req) {
      // The thread keeps the process alive while a rollout waits on it (its start included).
      worker.ref();
      try {
        await ready;
        if (failure) throw failure;
      } catch (err) {
        if (pending.size === 0) worker.unref();
        throw err;
      }
      syncWeights();
      const id = nextId++;
      const result = new Promise<TokenCompletion[]>((resolve, reject) => pending.set(id, { resolve, reject }));
      worker.postMessage({ type: 'complete', id, req } satisfies ToReplica);
      return result;
    },
    async close() {
      await worker.terminate();
    },
  };
}
