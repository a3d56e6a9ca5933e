/**
 * `doctor-agent setup torch`: the Python environment of the TRL runner (python/), installed
 * by the project itself into `.venv/` with the exact versions of python/requirements.lock
 * (PyPI's wheels: on Linux x86-64 PyTorch's CUDA build, which also runs on CPU). With
 * DOCTOR_AGENT_PYTHON set, the environment it names is checked instead.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { findPython, PROJECT_VENV, PYTHON_PACKAGE_DIR, pythonProcessEnv, venvPython } from '../../common/python.ts';
import { UserError } from '../../contract/errors.ts';

/** The installer used inside the environment: fast, parallel, cached downloads. */
export const UV_VERSION = '0.13.9';
const LOCK = join(PYTHON_PACKAGE_DIR, 'requirements.lock');
const MARKER = '.doctor-agent-setup';
const VERSIONS = '.doctor-agent-versions.json';

/** What the runner needs importable, and the versions the lock pins. */
const CHECK = [
  'import json, torch, transformers, trl, accelerate, datasets',
  'print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,',
  ' "accelerate": accelerate.__version__, "datasets": datasets.__version__, "cuda": torch.cuda.is_available(),',
  ' "gpus": torch.cuda.device_count()}))',
].join('\n');

export interface SetupOptions {
  python?: string;
  venv?: string;
  torchIndex?: string;
  deepspeed?: boolean;
  force?: boolean;
}

/** Hash of what the environment is built from: a changed lock or option rebuilds it. */
function wanted(opts: SetupOptions): string {
  return createHash('sha256')
    .update(readFileSync(LOCK))
    .update(readFileSync(join(PYTHON_PACKAGE_DIR, 'pyproject.toml')))
    .update(JSON.stringify({ uv: UV_VERSION, torchIndex: opts.torchIndex ?? null, deepspeed: !!opts.deepspeed }))
    .digest('hex');
}

function run(file: string, args: string[], what: string): void {
  const r = spawnSync(file, args, { stdio: 'inherit', env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
  if (r.error || r.status !== 0) {
    throw new UserError(`setup torch: ${what} failed (${r.error?.message ?? `exit ${r.status}`})`, {
      hint: 'check the network access to PyPI (pip config, proxies), then run `doctor-agent setup torch --force`',
    });
  }
}

/** Checks an environment and returns its versions. */
export function checkPython(python: string): Record<string, unknown> {
  const r = spawnSync(python, ['-c', CHECK], { encoding: 'utf8', env: pythonProcessEnv() });
  if (r.error || r.status !== 0) {
    throw new UserError(`${python}: cannot import the TRL runner's packages (${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || `exit ${r.status}`})`, {
      hint: 'run `doctor-agent setup torch`, or install python/requirements.lock into that environment',
    });
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

function folderSize(dir: string): string {
  try {
    return execFileSync('du', ['-sh', dir], { encoding: 'utf8' }).split('\t')[0];
  } catch {
    return '?';
  }
}

export function setupTorch(opts: SetupOptions, log: (line: string) => void): { python: string; versions: Record<string, unknown>; seconds: number; installed: boolean } {
  const started = performance.now();
  if (process.env.DOCTOR_AGENT_PYTHON?.trim() && !opts.venv) {
    const python = findPython()!.python;
    log(`DOCTOR_AGENT_PYTHON is set: checking ${python} instead of creating .venv/`);
    return { python, versions: checkPython(python), seconds: (performance.now() - started) / 1000, installed: false };
  }
  const venv = opts.venv ?? PROJECT_VENV;
  const python = venvPython(venv);
  const marker = join(venv, MARKER);
  const want = wanted(opts);
  if (!opts.force && existsSync(python) && existsSync(marker) && existsSync(join(venv, VERSIONS)) && readFileSync(marker, 'utf8') === want) {
    log(`${venv} is already set up from python/requirements.lock (--force rebuilds it)`);
    return { python, versions: JSON.parse(readFileSync(join(venv, VERSIONS), 'utf8')) as Record<string, unknown>, seconds: (performance.now() - started) / 1000, installed: false };
  }
  if (existsSync(venv)) rmSync(venv, { recursive: true, force: true });
  const base = opts.python ?? 'python3';
  log(`creating ${venv} with ${base}`);
  run(base, ['-m', 'venv', venv], `${base} -m venv`);
  run(python, ['-m', 'pip', 'install', '--quiet', `uv==${UV_VERSION}`], `installing uv ${UV_VERSION}`);
  const uv = [python, '-m', 'uv', 'pip', 'install', '--python', python] as const;
  if (opts.torchIndex) {
    // Another PyTorch build (e.g. CPU-only or another CUDA): torch from that index, the rest resolved from PyPI.
    log(`installing torch from ${opts.torchIndex}, then the runner's packages`);
    const torchPin = readFileSync(LOCK, 'utf8').split('\n').find((l) => l.startsWith('torch=='))!;
    run(uv[0], [...uv.slice(1), '--index-url', opts.torchIndex, torchPin], 'installing torch');
    run(uv[0], [...uv.slice(1), '-e', PYTHON_PACKAGE_DIR], 'installing the runner package');
  } else {
    log('installing python/requirements.lock (PyTorch, transformers, TRL, accelerate; a few GB)');
    run(uv[0], [...uv.slice(1), '-r', LOCK], 'installing python/requirements.lock');
    run(uv[0], [...uv.slice(1), '--no-deps', '-e', PYTHON_PACKAGE_DIR], 'installing the runner package');
  }
  if (opts.deepspeed) run(uv[0], [...uv.slice(1), '-e', `${PYTHON_PACKAGE_DIR}[deepspeed]`], 'installing DeepSpeed');
  const versions = checkPython(python);
  writeFileSync(join(venv, VERSIONS), JSON.stringify(versions));
  writeFileSync(marker, want);
  const seconds = (performance.now() - started) / 1000;
  log(`set up ${venv} in ${seconds.toFixed(0)} s (${folderSize(venv)}): ${JSON.stringify(versions)}`);
  return { python, versions, seconds, installed: true };
}

export function registerSetup(program: Command): void {
  const setup = program.command('setup').description('Install optional parts of the project.');
  setup
    .command('torch')
    .description('Create .venv/ with the TRL runner\'s Python packages (python/requirements.lock: PyTorch, transformers, TRL, accelerate), or check DOCTOR_AGENT_PYTHON')
    .option('--python <python>', 'the Python that creates the environment (default python3, 3.10 or newer)')
    .option('--torch-index <url>', 'take torch from this package index instead, e.g. https://download.pytorch.org/whl/cpu (the rest from PyPI)')
    .option('--deepspeed', 'also install DeepSpeed (python/pyproject.toml extra "deepspeed")')
    .option('--force', 'rebuild the environment even when it is up to date')
    .action((o: { python?: string; torchIndex?: string; deepspeed?: boolean; force?: boolean }) => {
      const r = setupTorch(o, (line) => console.log(`[setup torch] ${line}`));
      console.log(`[setup torch] ready: ${r.python} (torch ${String(r.versions.torch)}, TRL ${String(r.versions.trl)}, CUDA ${r.versions.cuda ? `yes, ${String(r.versions.gpus)} GPU(s)` : 'no'})`);
    });
}
