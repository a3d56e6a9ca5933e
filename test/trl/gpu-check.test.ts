/**
 * scripts/gpu-check.sh, the TRL runner's GPU check, in its CPU smoke mode (tiny shapes, a few
 * steps) with the TRL runner's Python: SFT then GRPO through python/doctor_agent_trl, the JSON of
 * figures (tokens/s, MFU against the --peak-tflops given, GPU memory where there is a GPU), the
 * summary lines, the step params it builds being exactly what the step kinds' schemas fill in, and
 * a bad knob being one clear line. Speeds are only checked to be measured (positive), never bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../common/python.ts';
import { parseParams } from '../../contract/params.ts';
import { SftParams } from '../../dsl/kinds/sft.ts';
import { GrpoParams } from '../../dsl/kinds/grpo.ts';
import { requireTorchPython } from '../helpers/torch-python.ts';
import { tempDir } from '../train/helpers.ts';

const SCRIPT = join(PROJECT_ROOT, 'scripts', 'gpu-check.sh');

function env(python: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, DOCTOR_AGENT_PYTHON: python, ...extra };
  delete e.DOCTOR_AGENT_GPU_CHECK_SMOKE;
  if (!('OUT' in extra)) delete e.OUT;
  return e;
}

function run(args: string[], e: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT, ...args], { cwd: PROJECT_ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

function positive(value: unknown, what: string): void {
  assert.equal(typeof value, 'number', `${what} is not a number: ${String(value)}`);
  assert.ok((value as number) > 0 && Number.isFinite(value as number), `${what} is not > 0: ${String(value)}`);
}

test('gpu-check.sh --cpu-smoke runs SFT then GRPO through the runner and writes its figures', { timeout: 300_000 }, async (t) => {
  const python = requireTorchPython(t);
  if (!python) return;
  const out = tempDir('gpu-check');
  // No --out: the JSON goes to $OUT/gpu-check.json.
  const r = await run(['--cpu-smoke', '--peak-tflops', '1'], env(python, { OUT: out }), 290_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr.slice(-4000)}`);
  const file = join(out, 'gpu-check.json');
  assert.ok(existsSync(file), `no ${file}`);
  const j = JSON.parse(readFileSync(file, 'utf8'));

  assert.equal(j.smoke, true);
  positive(j.model.flop_parameters, 'model.flop_parameters');
  assert.equal(j.peak_flops, 1e12);
  const sft = j.stages.sft;
  assert.equal(sft.steps, 4);
  for (const k of ['train_tokens_per_s', 'mfu', 'tokens_measured', 'seconds_measured']) positive(sft[k], `sft.${k}`);
  const grpo = j.stages.grpo;
  assert.equal(grpo.iterations, 2);
  for (const k of ['generated_tokens_per_s', 'trained_tokens_per_s', 'tokens_per_s', 'mfu', 'generation_mfu', 'generated_tokens', 'trained_tokens']) {
    positive(grpo[k], `grpo.${k}`);
  }
  for (const stage of [sft, grpo]) {
    if (j.cuda) {
      positive(stage.gpu_memory.max_allocated_bytes, 'max_allocated_bytes');
      positive(stage.gpu_memory.max_reserved_bytes, 'max_reserved_bytes');
    } else {
      assert.equal(stage.gpu_memory, null);
    }
  }

  // One summary line per stage, then the closing line, on stdout; the libraries' output is on stderr.
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[0], /^sft: 4 steps .* train tokens\/s; MFU [\d.]+%/);
  assert.match(lines[1], /^grpo: 2 iterations .* generated tokens\/s, [\d,]+ trained tokens\/s; MFU [\d.]+% training/);
  assert.match(lines[2], /^gpu-check: .*figures in /);

  // The params it runs the steps with are valid step params, every default as the schemas fill it in.
  assert.deepEqual(parseParams(SftParams, j.specs.sft, 'train.sft'), j.specs.sft);
  assert.deepEqual(parseParams(GrpoParams, j.specs.grpo, 'rl.grpo'), j.specs.grpo);
});

test('gpu-check.sh: a bad knob is one clear line and exit 2, before any training', { timeout: 60_000 }, (t) => {
  const python = requireTorchPython(t);
  if (!python) return;
  const r = spawnSync('bash', [SCRIPT, '--sft-steps', '0'], { cwd: PROJECT_ROOT, env: env(python), encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /gpu-check: --sft-steps: give a positive number, not 0/);
  assert.doesNotMatch(r.stderr, /Traceback/);
  assert.equal(r.stdout, '');
});
