/**
 * Pipelines started through the real `temporal` CLI, on a real dev server with a worker:
 * the raw form (`doctor-agent compile --json` given to `temporal workflow start --type
 * pipeline --task-queue doctor-agent --input-file`), and the extensions in bin/ on PATH
 * (`temporal pipeline start|run|status`, `temporal workflow pipeline`), connection flags
 * given to temporal before the extension's name included, and the demo pipeline (its data
 * shrunk with --set) run to the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { runView } from '../../runtime/runs.ts';
import { PROJECT_ROOT, resolveTemporalCli } from '../../runtime/temporal.ts';
import type { PipelineResult } from '../../workflows/types.ts';
import { startTestServer, startWorker, waitFor, writeReadPipeline } from './helpers.ts';

const PIPELINE = writeReadPipeline('ext-test');

test('the temporal CLI starts pipelines: raw workflow start with a compiled Plan, and the pipeline extensions', async (t) => {
  const s = await startTestServer(t);
  await startWorker(t, s, ['cpu']);
  const temporal = resolveTemporalCli();
  const dir = mkdtempSync(join(s.store.root, 'ext-'));
  const file = join(dir, 'ext.yaml');
  writeFileSync(file, PIPELINE);
  // The project's bin/ on PATH, as the README tells users; no temporal.toml of the machine is read.
  const base = {
    PATH: `${join(PROJECT_ROOT, 'bin')}${delimiter}${process.env.PATH}`, HOME: dir, XDG_CONFIG_HOME: dir,
    DOCTOR_AGENT_HOME: s.store.root,
  };
  const env = { ...base, TEMPORAL_ADDRESS: s.address };
  const run = (args: string[], e: Record<string, string> = env) => execa(temporal, args, { env: e, extendEnv: false, reject: false, cwd: PROJECT_ROOT });
  // A run whose input the workflow cannot read would retry its first task for ever: wait a bounded time.
  const closed = (id: string) => waitFor(`run ${id} to close`, async () => {
    const d = await s.client.workflow.getHandle(id).describe().catch(() => undefined);
    return d && d.status.name !== 'RUNNING' ? d.status.name : undefined;
  }, 60_000);
  const result = async (id: string) => {
    await closed(id);
    return (await s.client.workflow.getHandle(id).result()) as PipelineResult;
  };
  const readOutput = (id: string) => readFileSync(join(s.store.stepPath(id, 'write'), 'out.txt'), 'utf8');

  // 1. The raw form: the Plan of `compile --json` is the workflow's input.
  const compiled = await execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), 'compile', file, '--json', '--set', 'greeting=raw'], { reject: false });
  assert.equal(compiled.exitCode, 0, compiled.stderr);
  const planFile = join(dir, 'plan.json');
  writeFileSync(planFile, compiled.stdout);
  const raw = await run(['workflow', 'start', '--type', 'pipeline', '--task-queue', 'doctor-agent', '--workflow-id', 'raw-1', '--input-file', planFile]);
  assert.equal(raw.exitCode, 0, raw.stderr);
  const rawResult = await result('raw-1');
  assert.equal(rawResult.status, 'succeeded');
  assert.equal(rawResult.steps.read.state, 'succeeded');
  assert.equal(readOutput('raw-1'), 'raw');
  // Anything else fails the run at once, saying what to give.
  const bad = await run(['workflow', 'start', '--type', 'pipeline', '--task-queue', 'doctor-agent', '--workflow-id', 'raw-bad', '--input', '{"steps": 1}']);
  assert.equal(bad.exitCode, 0, bad.stderr);
  assert.equal(await closed('raw-bad'), 'FAILED');
  await assert.rejects(s.client.workflow.getHandle('raw-bad').result(), (err: Error & { cause?: Error }) => {
    assert.match(err.cause?.message ?? '', /the workflow input is not a Plan: give the output of `doctor-agent compile FILE --json`/);
    return true;
  });

  // 2. `temporal pipeline start`: prints the run id; the worker runs it to completion.
  const started = await run(['pipeline', 'start', '--pipeline', file, '--set', 'greeting=bonjour']);
  assert.equal(started.exitCode, 0, started.stderr);
  const id = started.stdout.trim();
  assert.match(id, /^ext-test-\d{8}-\d{6}-[0-9a-f]{4}$/);
  assert.equal((await result(id)).status, 'succeeded');
  assert.equal(readOutput(id), 'bonjour');
  const status = await run(['pipeline', 'status', id, '--json']);
  assert.equal(status.exitCode, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).result.steps.write.state, 'succeeded');

  // `temporal workflow pipeline`, the address given to temporal before the extension's name (no TEMPORAL_ADDRESS).
  const viaWorkflow = await run(['workflow', '--address', s.address, 'pipeline', '--pipeline', file, '--set', 'greeting=hallo', '--no-cache'], base);
  assert.equal(viaWorkflow.exitCode, 0, viaWorkflow.stderr);
  const id2 = viaWorkflow.stdout.trim();
  assert.equal((await result(id2)).status, 'succeeded');
  assert.equal(readOutput(id2), 'hallo');

  // `temporal pipeline run` follows the run live and exits with its result.
  const live = await run(['pipeline', 'run', '--pipeline', file, '--set', 'greeting=live', '--no-worker']);
  assert.equal(live.exitCode, 0, live.stderr);
  assert.match(live.stderr, /run ext-test-\S+ started \(2 steps\)/);
  assert.match(live.stdout, /read\s+succeeded/);

  // A user error through temporal: one line, exit 1.
  const refused = await run(['--env', 'prod', 'pipeline', 'start', '--pipeline', file]);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, /^error: --env: temporal's environments/);
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');

  // 3. The demo pipeline through the extension, its data shrunk with --set (SFT and GRPO run as the
  // demo sets them), to the end: every step succeeds and the evaluation reports an accuracy.
  const demo = await run(['pipeline', 'start', '--pipeline', 'pipelines/huatuo-tiny.yaml', '--set', 'train_size=8', '--set', 'eval_size=2', '--no-cache']);
  assert.equal(demo.exitCode, 0, demo.stderr);
  const demoId = demo.stdout.trim();
  assert.match(demoId, /^huatuo-tiny-/);
  await waitFor(`demo run ${demoId} to close`, async () => {
    const d = await s.client.workflow.getHandle(demoId).describe().catch(() => undefined);
    return d && d.status.name !== 'RUNNING' ? d.status.name : undefined;
  }, 600_000);
  const demoResult = (await s.client.workflow.getHandle(demoId).result()) as PipelineResult;
  assert.equal(demoResult.status, 'succeeded');
  for (const id of ['kb', 'verifiable', 'sft', 'grpo', 'eval_sft', 'eval']) assert.equal(demoResult.steps[id].state, 'succeeded', id);
  const report = JSON.parse(readFileSync(join(s.store.stepPath(demoId, 'eval'), 'report.json'), 'utf8'));
  assert.equal(typeof report.accuracy.average, 'number', JSON.stringify(report.accuracy));
});
