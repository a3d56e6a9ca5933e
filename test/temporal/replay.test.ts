/**
 * Determinism guard: every recorded history in test/histories/ (scripts/record-histories.ts)
 * replays against today's workflow code without a nondeterminism error. A workflow that
 * issues different commands is rejected by the same check (so the check can fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { PROJECT_ROOT } from '../../runtime/temporal.ts';
import { workflowBundle } from '../../runtime/workflow-bundle.ts';
import { FIXTURES } from './helpers.ts';

const DIR = join(PROJECT_ROOT, 'test', 'histories');

function histories() {
  return readdirSync(DIR).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const { workflowId, history } = JSON.parse(readFileSync(join(DIR, f), 'utf8'));
    return { name: f, workflowId: workflowId as string, history: historyFromJSON(history) };
  });
}

test('recorded histories replay against the current workflow code', async () => {
  const all = histories();
  assert.ok(all.length >= 5, `only ${all.length} histories in ${DIR}`);
  const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, all);
  let n = 0;
  for await (const r of results) {
    n++;
    assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
  }
  assert.equal(n, all.length);
});

test('a workflow that issues other commands fails the replay', async () => {
  const [first] = histories();
  const drifted = await bundleWorkflowCode({ workflowsPath: join(FIXTURES, 'drifted-workflow.ts'), logger: silent });
  await assert.rejects(
    Worker.runReplayHistory({ workflowBundle: drifted }, first.history, first.workflowId),
    (err: Error) => err.name === 'DeterminismViolationError',
  );
});

const noop = () => {};
const silent = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };
