/**
 * The run commands end to end through bin/doctor-agent.js, on a real dev server
 * (TEMPORAL_ADDRESS points at it): `run` exits with the pipeline's result, `status`
 * and `logs` read it back afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from '../../runtime/temporal.ts';
import { cliFor, FIXTURES, startTestServer, waitFor, writeReadPipeline } from './helpers.ts';

const PIPELINE = writeReadPipeline('cli-test');

const FAILING = `
name: cli-fail
steps:
  - id: bad
    uses: command
    with:
      run: [node, -e, "console.log(JSON.stringify({type:'error',user:true,message:'the data file has no header'})); process.exit(2)"]
`;

test('doctor-agent run / status / logs', async (t) => {
  const s = await startTestServer(t);
  const cli = cliFor(s);
  const ok = join(s.store.root, 'ok.yaml');
  const bad = join(s.store.root, 'bad.yaml');
  writeFileSync(ok, PIPELINE);
  writeFileSync(bad, FAILING);

  const run = await cli('run', ok, '--set', 'greeting=bonjour');
  assert.equal(run.exitCode, 0, run.stderr);
  const id = /run (cli-test-\S+) started/.exec(run.stderr)?.[1];
  assert.ok(id, run.stderr);
  assert.match(run.stdout, /: succeeded/);
  assert.match(run.stdout, /write\s+succeeded/);
  // The step activity recorded each step's outcome and refreshed the run's report.html; run prints where it is.
  const reportFile = join(s.store.runDir(id), 'report.html');
  assert.ok(run.stdout.includes(`report: ${reportFile}`), run.stdout);
  const html = readFileSync(reportFile, 'utf8');
  assert.match(html, /<td>write<\/td><td>command<\/td><td>succeeded<\/td>/);
  assert.match(html, /<td>read<\/td><td>command<\/td><td>succeeded<\/td>/);
  assert.equal(JSON.parse(readFileSync(s.store.outcomeFile(id, 'read'), 'utf8')).state, 'succeeded');
  const statusText = await cli('status', id);
  assert.ok(statusText.stdout.includes(`report: ${reportFile}`), statusText.stdout);

  const status = await cli('status', id, '--json');
  assert.equal(status.exitCode, 0, status.stderr);
  const view = JSON.parse(status.stdout);
  assert.equal(view.execution, 'COMPLETED');
  assert.equal(view.result.steps.read.state, 'succeeded');

  const logs = await cli('logs', id, '--step', 'read');
  assert.match(logs.stdout, /read: bonjour/);

  const failed = await cli('run', bad);
  assert.equal(failed.exitCode, 1);
  assert.match(failed.stdout + failed.stderr, /the data file has no header/);

  const missing = await cli('status', 'no-such-run');
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /no run "no-such-run"/);

  // Ctrl-C detaches: the run goes on in a background worker, which exits once the run is over.
  const slow = join(s.store.root, 'slow.yaml');
  writeFileSync(slow, `
name: cli-detach
steps:
  - id: count
    uses: command
    with:
      run: [node, ${JSON.stringify(join(FIXTURES, 'counter.mjs'))}, --n, "60", --delay, "100", --every, "5"]
      checkpoints: ckpt/step-*.json
      resume_args: [--resume, "{checkpoint}"]
`);
  const attached = cli('run', slow);
  let err = '';
  attached.stderr?.on('data', (d: Buffer) => void (err += String(d)));
  const runId = await waitFor('the run to start', () => /run (cli-detach-\S+) started/.exec(err)?.[1], 60_000);
  const starts = join(s.store.stepPath(runId, 'count'), 'starts.log');
  await waitFor('the job to run', () => existsSync(starts) || undefined, 60_000);
  attached.kill('SIGINT');
  const detached = await attached;
  assert.equal(detached.exitCode, 130, detached.stderr);
  assert.match(detached.stderr, /detached: run cli-detach-\S+ keeps going in background worker (\d+)/);
  const bgPid = Number(/background worker (\d+)/.exec(detached.stderr)?.[1]);
  const result = await s.client.workflow.getHandle(runId).result();
  assert.equal(result.steps.count.state, 'succeeded');
  await waitFor('the background worker to exit', () => !pidAlive(bgPid) || undefined, 30_000);
});
