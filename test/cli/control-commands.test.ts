/**
 * The commands that drive runs and schedules, through bin/doctor-agent.js on a real dev
 * server (TEMPORAL_ADDRESS points at it, a worker runs in this process): start, list,
 * pause, resume, cancel, and every `schedule` subcommand, with their user errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runView } from '../../runtime/runs.ts';
import { cliFor, FIXTURES, startTestServer, startWorker, waitFor } from '../temporal/helpers.ts';

const QUICK = `
name: cli-nightly
steps:
  - id: hello
    uses: command
    with:
      run: [node, -e, "console.log('hello')"]
`;

const SLOW = `
name: cli-control
steps:
  - id: count
    uses: command
    with:
      run: [node, ${JSON.stringify(join(FIXTURES, 'counter.mjs'))}, --n, "600", --delay, "100", --every, "5"]
      checkpoints: ckpt/step-*.json
      resume_args: [--resume, "{checkpoint}"]
  - id: after
    uses: command
    needs: [count]
    with:
      run: [node, -e, "console.log('after')"]
`;

test('start / list / pause / resume / cancel, and schedule create|list|describe|pause|unpause|trigger|delete', async (t) => {
  const s = await startTestServer(t);
  await startWorker(t, s);
  const cli = cliFor(s);
  const file = join(s.store.root, 'slow.yaml');
  writeFileSync(file, SLOW);
  const quick = join(s.store.root, 'quick.yaml');
  writeFileSync(quick, QUICK);

  const started = await cli('start', '--pipeline', file);
  assert.equal(started.exitCode, 0, started.stderr);
  const id = started.stdout.trim();
  assert.match(id, /^cli-control-\S+$/);

  const list = await cli('list');
  assert.equal(list.exitCode, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${id} +running `, 'm'));

  const paused = await cli('pause', id);
  assert.equal(paused.exitCode, 0, paused.stderr);
  assert.match(paused.stdout, new RegExp(`^paused ${id}`));
  await waitFor('the run to be paused', async () => ((await runView(s.client, id)).progress?.status === 'paused') || undefined, 30_000);

  const resumed = await cli('resume', id);
  assert.equal(resumed.exitCode, 0, resumed.stderr);
  assert.equal(resumed.stdout.trim(), `resumed ${id}`);

  const cancelled = await cli('cancel', id);
  assert.equal(cancelled.exitCode, 0, cancelled.stderr);
  assert.equal(cancelled.stdout.trim(), `cancellation requested for ${id}`);
  await assert.rejects(s.client.workflow.getHandle(id).result());

  const restarted = await cli('resume', id);
  assert.equal(restarted.exitCode, 0, restarted.stderr);
  const again = new RegExp(`^${id} restarted as (\\S+) `).exec(restarted.stdout)?.[1];
  assert.ok(again, restarted.stdout);
  const restartedView = await runView(s.client, again);
  assert.equal(restartedView.execution, 'RUNNING');
  await s.client.workflow.getHandle(again).cancel();
  await assert.rejects(s.client.workflow.getHandle(again).result());

  const missingRun = await cli('cancel', 'no-such-run');
  assert.equal(missingRun.exitCode, 1);
  assert.match(missingRun.stderr, /^error: no run "no-such-run" on .*`doctor-agent list` shows the runs/);

  const badOverlap = await cli('schedule', 'create', 'nightly', '--pipeline', quick, '--cron', '0 2 * * *', '--overlap', 'sometimes');
  assert.equal(badOverlap.exitCode, 1);
  assert.match(badOverlap.stderr, /--overlap sometimes: use one of skip, buffer-one, buffer-all, cancel-other, terminate-other, allow-all/);

  const created = await cli('schedule', 'create', 'nightly', '--pipeline', quick, '--cron', '0 2 * * *');
  assert.equal(created.exitCode, 0, created.stderr);
  assert.match(created.stdout, /^schedule nightly: cli-nightly at "0 2 \* \* \*", overlap skip\nnext run: \S+T02:00:00\.000Z/);

  const schedules = await cli('schedule', 'list');
  assert.match(schedules.stdout, /^nightly {2}active {2}cli-nightly {2}"0 2 \* \* \*"/m);
  const described = await cli('schedule', 'describe', 'nightly');
  assert.match(described.stdout, /^cron: "0 2 \* \* \*" in UTC$/m);

  for (const [cmd, done] of [['pause', 'paused'], ['unpause', 'unpaused'], ['trigger', 'triggered']]) {
    const r = await cli('schedule', cmd!, 'nightly');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), `${done} nightly`);
  }
  const triggered = await waitFor('the triggered run', async () =>
    (await s.client.schedule.getHandle('nightly').describe()).info.recentActions[0]?.action.workflow.workflowId);
  assert.equal((await s.client.workflow.getHandle(triggered).result()).steps.hello.state, 'succeeded');
  const deleted = await cli('schedule', 'delete', 'nightly');
  assert.equal(deleted.exitCode, 0, deleted.stderr);
  assert.equal(deleted.stdout.trim(), 'deleted nightly');
  const gone = await cli('schedule', 'delete', 'nightly');
  assert.equal(gone.exitCode, 1);
  assert.match(gone.stderr, /no schedule "nightly" \(`doctor-agent schedule list` shows them\)/);
});
