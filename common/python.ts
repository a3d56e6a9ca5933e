/**
 * The Python environment of the TRL runner (python/): `DOCTOR_AGENT_PYTHON` when set (an
 * existing environment, e.g. a GPU machine's own), else the project's `.venv/` that
 * `doctor-agent setup torch` creates.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The runner's Python package (doctor_agent_trl) lives here; it is put on PYTHONPATH. */
export const PYTHON_PACKAGE_DIR = join(PROJECT_ROOT, 'python');
export const PROJECT_VENV = join(PROJECT_ROOT, '.venv');

export interface PythonEnv {
  python: string;
  /** Where it came from, for messages: `DOCTOR_AGENT_PYTHON` or `.venv`. */
  source: string;
}

/** The interpreter of a virtual environment folder. */
export function venvPython(venv: string): string {
  return process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python');
}

/** The runner's Python, or undefined when there is none. */
export function findPython(env: NodeJS.ProcessEnv = process.env): PythonEnv | undefined {
  const given = env.DOCTOR_AGENT_PYTHON?.trim();
  if (given) return { python: given, source: 'DOCTOR_AGENT_PYTHON' };
  const local = venvPython(PROJECT_VENV);
  return existsSync(local) ? { python: local, source: '.venv' } : undefined;
}

/** The environment a runner process gets: the package on PYTHONPATH, unbuffered output. */
export function pythonProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = env.PYTHONPATH ? `${PYTHON_PACKAGE_DIR}:${env.PYTHONPATH}` : PYTHON_PACKAGE_DIR;
  return { ...env, PYTHONPATH: path, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: env.TOKENIZERS_PARALLELISM ?? 'false' };
}
