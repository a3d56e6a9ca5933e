/**
 * Picks the TensorFlow.js backend: the native ones when present (tfjs-node-gpu, then tfjs-node,
 * installed as packages or built by `npm install` into .tools/tfjs-node, see
 * scripts/install-native.mjs; registered as "tensorflow"), else WebAssembly, else plain JS.
 * A process that mostly trains or mostly generates asks for its workload (`initBackendFor`): the
 * faster backend for it comes first (`workloadOrder`; measured in engine/README.md). DOCTOR_AGENT_BACKEND
 * (tensorflow | wasm | cpu) forces one. Logged once on stderr, so a job's stdout stays pure protocol.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from './tf.ts';
import { registerGradients } from './gradients.ts';
import { registerNativeKernels } from './native-kernels.ts';
import { registerWasmKernels } from './wasm-kernels.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** What a process mostly does: it picks the backend order (`initBackendFor`). */
export type Workload = 'training' | 'generation' | 'rl';

/**
 * Generation of a model up to this many parameters goes to wasm first: each tfjs-node kernel is a
 * call into TensorFlow's runtime, and a small model's decoding step (a few hundred small kernels)
 * is faster on wasm, whose kernels are plain calls into the module. Measured: the tiny (0.5M) and small
 * (10M) presets decode faster on wasm at batch 1, 8 and 32 (small: 71-103 against 28-31 tokens/s
 * at batch 1, 461-528 against 349-394 at batch 32). Larger models are left to TensorFlow, whose
 * matMuls use every core and reach several times wasm's peak.
 */
export const WASM_GENERATION_MAX_PARAMS = 30_000_000;

/**
 * Backends to try for a workload, best first: training and RL (rollouts and updates in one
 * process) on tensorflow; generation on wasm for small models (WASM_GENERATION_MAX_PARAMS, or
 * when the size is not given), else on tensorflow. Figures: engine/README.md, "Backend per workload".
 */
export function workloadOrder(workload: Workload, parameters?: number): BackendName[] {
  if (workload === 'generation' && (parameters === undefined || parameters <= WASM_GENERATION_MAX_PARAMS)) return ['wasm', 'tensorflow', 'cpu'];
  return ['tensorflow', 'wasm', 'cpu'];
}

/** The backend an earlier call chose in this process (a later plain `initBackend()` keeps it). */
let chosen: BackendName | undefined;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let logged: string | undefined;
/** Why a native build that is present did not load (said when another backend is used). */
let nativeFailure: string | undefined;

/** The folder `npm install` builds the native backend into (DOCTOR_AGENT_NATIVE_DIR overrides). */
export function nativeDir(): string {
  return process.env.DOCTOR_AGENT_NATIVE_DIR || join(root, '.tools', 'tfjs-node');
}

/** Imports a package by a name TypeScript does not resolve (it may be absent). */
async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads the tfjs-node built into nativeDir() (its tfjs-core is a link to ours, so it registers
 * "tensorflow" with the engine's tfjs); returns its label, or undefined when there is none.
 */
function loadBuilt(): string | undefined {
  const dir = nativeDir();
  const markerFile = join(dir, 'built.json');
  if (!existsSync(markerFile)) return undefined;
  try {
    const marker = JSON.parse(readFileSync(markerFile, 'utf8')) as { tensorflow?: string; tfjsNode?: string };
    // TensorFlow's informational start-up lines (CPU features, oneDNN) are noise on a job's stderr.
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
    createRequire(join(dir, 'pkg', 'package.json'))('@tensorflow/tfjs-node');
    const where = relative(root, dir).startsWith('..') ? dir : relative(root, dir);
    return `@tensorflow/tfjs-node ${marker.tfjsNode}, TensorFlow ${marker.tensorflow}, built in ${where}`;
  } catch (err) {
    nativeFailure = `the native backend in ${dir} did not load (${(err as Error).message.split('\n')[0]}); rebuild it with \`node scripts/install-native.mjs\``;
    return undefined;
  }
}

async function register(name: BackendName): Promise<string | undefined> {
  if (name === 'tensorflow') {
    let found: string | undefined;
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      if (!found && (await tryImport(pkg))) found = pkg;
    }
    found ??= loadBuilt();
    // tfjs-node loads the union @tensorflow/tfjs, whose gradients replace the engine's: put ours back;
    // and some of its kernels give way to leaner ones (native-kernels.ts).
    if (found) {
      registerGradients(true);
      registerNativeKernels();
    }
    return found;
  }
  if (name === 'wasm') {
    if (!(await tryImport('@tensorflow/tfjs-backend-wasm'))) return undefined;
    // Its Concat, Slice and row GatherV2 give way to bulk-memory copies, and the engine's own
    // kernels join it (wasm-kernels.ts).
    registerWasmKernels();
    return '@tensorflow/tfjs-backend-wasm';
  }
  return (await tryImport('@tensorflow/tfjs-backend-cpu')) ? '@tensorflow/tfjs-backend-cpu' : undefined;
}

function forcedBackend(): BackendName | undefined {
  const forced = (process.env.DOCTOR_AGENT_BACKEND || undefined) as BackendName | undefined;
  if (forced && !ORDER.includes(forced)) {
    throw new Error(`DOCTOR_AGENT_BACKEND=${forced} is not a backend: use one of ${ORDER.join(', ')}`);
  }
  return forced;
}

/**
 * Selects and initialises the best backend present; returns its name ("tensorflow", "wasm" or
 * "cpu"). Without `prefer`, a backend an earlier call chose in this process (e.g. for its
 * workload) is kept.
 */
export async function initBackend(prefer?: BackendName): Promise<string> {
  const forced = forcedBackend();
  const wanted = forced ?? prefer;
  return oneAtATime(async () => {
    if (!wanted && chosen && tf.getBackend() === chosen) return chosen;
    return select(wanted ? [wanted] : ORDER, wanted, forced !== undefined);
  });
}

/**
 * Initialises the best backend present for a workload (`workloadOrder`; `parameters`: the model's
 * size, for generation), unless DOCTOR_AGENT_BACKEND forces one; the log line names the workload.
 */
export async function initBackendFor(workload: Workload, parameters?: number): Promise<string> {
  const forced = forcedBackend();
  const what = parameters === undefined ? workload : `${workload} (${(parameters / 1e6).toFixed(1)}M parameters)`;
  return oneAtATime(() => select(forced ? [forced] : workloadOrder(workload, parameters), forced, forced !== undefined, forced ? `for ${what}, forced by DOCTOR_AGENT_BACKEND` : `for ${what}`));
}

/** The selection running now (or the last one), which the next waits for. */
let selecting: Promise<unknown> = Promise.resolve();

/**
 * Runs backend selections one after another. tf.setBackend names the new backend at once but
 * installs it only when its (asynchronous) initialisation ends: a second selection in between
 * would leave the engine running one backend's kernels on the other backend's instance.
 */
function oneAtATime<T>(f: () => Promise<T>): Promise<T> {
  const run = selecting.then(f, f);
  selecting = run.catch(() => undefined);
  return run;
}

async function select(candidates: BackendName[], wanted: BackendName | undefined, forced: boolean, purpose?: string): Promise<string> {
  for (const name of candidates) {
    const pkg = await register(name);
    if (!pkg || !tf.findBackendFactory(name)) continue;
    if (tf.getBackend() !== name && !(await tf.setBackend(name))) continue;
    await tf.ready();
    chosen = name;
    const line = `${name} (${pkg})${purpose ? ` ${purpose}` : ''}${name !== 'tensorflow' && nativeFailure ? `; ${nativeFailure}` : ''}`;
    if (logged !== line) {
      process.stderr.write(`engine: TensorFlow.js backend ${line}\n`);
      logged = line;
    }
    return name;
  }
  const why = wanted
    ? `backend "${wanted}" is not available${forced ? ' (forced by DOCTOR_AGENT_BACKEND)' : ''}${wanted === 'tensorflow' ? `: ${nativeFailure ?? 'build it with `node scripts/install-native.mjs` (npm install does when it can) or install @tensorflow/tfjs-node'}` : ': install its package or choose another'}`
    : 'no TensorFlow.js backend could be initialised: install @tensorflow/tfjs-backend-wasm or @tensorflow/tfjs-backend-cpu';
  throw new Error(why);
}
