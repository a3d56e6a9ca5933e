/**
 * The TRL runner's Python for tests: DOCTOR_AGENT_PYTHON, else the project's .venv/ (made by
 * `doctor-agent setup torch`). Without one, tests that need it skip here and FAIL when
 * DOCTOR_AGENT_REQUIRE_TORCH=1 (.ci/run sets it after installing the environment), so CI can
 * never pass by skipping them.
 */
import { findPython } from '../../common/python.ts';

export function torchPython(): string | undefined {
  return findPython()?.python;
}

/** The Python to use, or undefined after marking the test skipped (or failing it under CI). */
export function requireTorchPython(t: { skip(message: string): void }): string | undefined {
  const python = torchPython();
  if (python) return python;
  const why = 'no Python environment for the TRL runner (run `doctor-agent setup torch`, or set DOCTOR_AGENT_PYTHON)';
  if (process.env.DOCTOR_AGENT_REQUIRE_TORCH === '1') throw new Error(`${why}, and DOCTOR_AGENT_REQUIRE_TORCH=1 requires it`);
  t.skip(why);
  return undefined;
}
