/**
 * Picks the TensorFlow.js backend: the native ones when installed (tfjs-node-gpu,
 * then tfjs-node, registered as "tensorflow"), else WebAssembly, else plain JS.
 * DOCTOR_AGENT_BACKEND (tensorflow | wasm | cpu) forces one. Logged once on stderr,
 * so a job's stdout stays pure protocol.
 */
import * as tf from './tf.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

let logged: string | undefined;

/** Imports a package by a name TypeScript does not resolve (it may be absent). */
async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function register(name: BackendName): Promise<string | undefined> {
  if (name === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      if (await tryImport(pkg)) return pkg;
    }
    return undefined;
  }
  if (name === 'wasm') return (await tryImport('@tensorflow/tfjs-backend-wasm')) ? '@tensorflow/tfjs-backend-wasm' : undefined;
  return (await tryImport('@tensorflow/tfjs-backend-cpu')) ? '@tensorflow/tfjs-backend-cpu' : undefined;
}

/** Selects and initialises the best backend present; returns its name ("tensorflow", "wasm" or "cpu"). */
export async function initBackend(prefer?: BackendName): Promise<string> {
  const forced = (process.env.DOCTOR_AGENT_BACKEND || undefined) as BackendName | undefined;
  if (forced && !ORDER.includes(forced)) {
    throw new Error(`DOCTOR_AGENT_BACKEND=${forced} is not a backend: use one of ${ORDER.join(', ')}`);
  }
  const wanted = forced ?? prefer;
  const candidates = wanted ? [wanted] : ORDER;
  for (const name of candidates) {
    const pkg = await register(name);
    if (!pkg || !tf.findBackendFactory(name)) continue;
    if (tf.getBackend() !== name && !(await tf.setBackend(name))) continue;
    await tf.ready();
    const line = `${name} (${pkg})`;
    if (logged !== line) {
      process.stderr.write(`engine: TensorFlow.js backend ${line}\n`);
      logged = line;
    }
    return name;
  }
  const why = wanted
    ? `backend "${wanted}" is not available${forced ? ' (forced by DOCTOR_AGENT_BACKEND)' : ''}: install its package or choose another`
    : 'no TensorFlow.js backend could be initialised: install @tensorflow/tfjs-backend-wasm or @tensorflow/tfjs-backend-cpu';
  throw new Error(why);
}
