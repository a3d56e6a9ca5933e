/**
 * Schedule names follow the rule of step ids in every `schedule` subcommand that takes one:
 * a bad name is refused with the rule, before the pipeline is compiled or Temporal is
 * contacted (TEMPORAL_ADDRESS points at a closed port: reaching it would be another error).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { createSchedule, deleteSchedule, describeSchedule, pauseSchedule, triggerSchedule, unpauseSchedule } from '../../runtime/schedules.ts';
import { scheduleNameProblem } from '../../runtime/schedule-name.ts';
import { UserError } from '../../contract/errors.ts';
import type { Plan } from '../../dsl/plan.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const RULE = 'a name must start with a letter or _ and hold only letters, digits, _ and - (the rule for step ids)';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/doctor-agent.js', ...args], {
    cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('every schedule subcommand refuses a name that breaks the rule of step ids, saying the rule', () => {
  const bad = ['night ly', 'nightly;rm', '-nightly', '1nightly', 'a/b', 'nightly.eval', 'ünï'];
  const runs: [string, string[]][] = [
    ['create', ['--pipeline', 'pipelines/huatuo-tiny.yaml', '--cron', '0 2 * * *']],
    ['describe', []],
    ['trigger', []],
    ['pause', []],
    ['unpause', []],
    ['delete', []],
  ];
  for (const [i, [cmd, rest]] of runs.entries()) {
    const name = bad[i % bad.length];
    const r = cli('schedule', cmd, ...(name.startsWith('-') ? [...rest, '--', name] : [name, ...rest]));
    assert.equal(r.code, 1, `${cmd} ${name}: ${r.err}`);
    assert.equal(r.err.split('\n')[0], `error: schedule name ${JSON.stringify(name)} is not allowed: ${RULE}, e.g. nightly-eval`, `${cmd}: ${r.err}`);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  }
});

test('--overlap names one of its own policies, never a built-in name', () => {
  const r = cli('schedule', 'create', 'nightly', '--pipeline', 'pipelines/huatuo-tiny.yaml', '--cron', '0 2 * * *', '--overlap', 'constructor');
  assert.equal(r.code, 1, r.err);
  assert.equal(r.err.split('\n')[0], 'error: --overlap constructor: use one of skip, buffer-one, buffer-all, cancel-other, terminate-other, allow-all');
});

test('the rule: the step id pattern', () => {
  for (const ok of ['nightly', 'nightly-eval', '_x', 'Eval_2']) assert.equal(scheduleNameProblem(ok), undefined, ok);
  for (const bad of ['', ' ', 'a b', '-a', '9a', 'a.b', 'a/b', '../x', 'a\n']) assert.match(scheduleNameProblem(bad) ?? '', /is not allowed/, JSON.stringify(bad));
});

test('the schedule functions refuse a bad name before any call to Temporal', async () => {
  // A stand-in client: these calls must fail before reaching it (a real server is not needed for that).
  const calls: string[] = [];
  const client = { schedule: new Proxy({}, { get: (_t, key) => (calls.push(String(key)), () => Promise.resolve()) }) } as unknown as Client;
  const plan = { name: 'p', hash: 'h', sources: [], steps: [], params: {} } as unknown as Plan;
  const attempts: (() => Promise<unknown>)[] = [
    () => createSchedule(client, { name: 'bad name', plan, cron: '0 2 * * *' }),
    () => describeSchedule(client, 'bad name'),
    () => triggerSchedule(client, 'a/b'),
    () => pauseSchedule(client, '-x'),
    () => unpauseSchedule(client, 'x y'),
    () => deleteSchedule(client, '../x'),
  ];
  for (const attempt of attempts) {
    await assert.rejects(attempt, (err: unknown) => err instanceof UserError && /is not allowed: a name must start with a letter/.test(err.message));
  }
  await assert.rejects(
    createSchedule(client, { name: 'ok', plan, cron: '0 2 * * *', overlap: 'toString' as 'skip' }),
    (err: unknown) => err instanceof UserError && /^overlap toString: use one of skip, /.test(err.message),
  );
  assert.deepEqual(calls, []);
});
