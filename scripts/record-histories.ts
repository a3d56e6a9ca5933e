/**
 * Records workflow histories for the replay tests (test/temporal/replay.test.ts):
 * runs a few small Plans on a throw-away dev server and writes each history as JSON
 * into test/histories/. Re-run it (and commit the files) when a change to the
 * workflow is meant to change the commands it issues, i.e. a new workflow version.
 *
 *   node --import tsx scripts/record-histories.ts
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Client } from '@temporalio/client';
import { writeFileAtomic } from '../common/fs.ts';
import { pauseRun, resumeRun, startRun } from '../runtime/runs.ts';
import { PROJECT_ROOT } from '../runtime/temporal.ts';
import { progressQuery } from '../workflows/definitions.ts';
import { cleanupScope, makePlan, nodeEval, startTestServer, startWorker, waitFor } from '../test/temporal/helpers.ts';

const OUT = join(PROJECT_ROOT, 'test', 'histories');
const scope = cleanupScope();

async function save(client: Client, name: string, workflowId: string, runId?: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const file = join(OUT, `${name}.json`);
  writeFileAtomic(file, JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1) + '\n');
  console.log(`${file}: ${history.events?.length} events`);
}

const result = (o: string) => `console.log(JSON.stringify({type:'result',outputs:${o}}))`;

async function main(): Promise<void> {
  const s = await startTestServer(scope);
  await startWorker(scope, s);
  const c = s.client;

  // Outputs between steps, parallel steps, a false `if` and a skip that propagates.
  const dag = await startRun(c, makePlan('dag', [
    { id: 'a', with: { run: nodeEval(`require('fs').writeFileSync('a.txt', '41')`), outputs: { file: 'a.txt' } }, outputs: ['file'] },
    { id: 'c', with: { run: nodeEval('') } },
    { id: 'b', needs: ['a'], with: { run: [...nodeEval(result('{}')), '${{ steps.a.outputs.file }}'] } },
    { id: 'd', needs: ['b', 'c'], if: "steps.a.outputs.file == ''", with: { run: nodeEval('') } },
    { id: 'e', needs: ['d'], with: { run: nodeEval('') } },
  ]), { searchAttributes: true });
  await dag.result();
  await save(c, 'dag', dag.workflowId);

  // A user error: fails fast, the parallel step is cancelled.
  const bad = await startRun(c, makePlan('user-error', [
    { id: 'slow', with: { run: nodeEval('setTimeout(() => {}, 30000)') } },
    { id: 'bad', with: { run: 'not an argv array' } },
  ]));
  await bad.result().catch(() => {});
  await save(c, 'user-error', bad.workflowId);

  // Pause and resume signals.
  const paused = await startRun(c, makePlan('pause', [
    { id: 'a', with: { run: nodeEval('setTimeout(() => {}, 500)') } },
    { id: 'b', needs: ['a'], with: { run: nodeEval('') } },
  ]), { searchAttributes: true });
  await pauseRun(c, paused.workflowId);
  await waitFor('paused', async () => {
    const p = await paused.query(progressQuery);
    return p.paused && p.steps.every((x) => x.state !== 'running') || undefined;
  });
  await resumeRun(c, paused.workflowId, true);
  await paused.result();
  await save(c, 'pause-resume', paused.workflowId);

  // Continue-as-new: the first run of the chain, and the last.
  const steps = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, needs: i ? [`s${i - 1}`] : [], with: { run: nodeEval('') } }));
  const chain = await startRun(c, makePlan('chain', steps), { continueAsNewAfter: 2 });
  await chain.result();
  await save(c, 'continue-as-new-first', chain.workflowId, chain.firstExecutionRunId);
  await save(c, 'continue-as-new-last', chain.workflowId);

  // Cancellation while a step runs.
  const cancelled = await startRun(c, makePlan('cancel', [{ id: 'sleep', with: { run: nodeEval('setTimeout(() => {}, 30000)') } }]));
  await waitFor('running', async () => (await cancelled.query(progressQuery)).steps[0].state === 'running' || undefined);
  await sleep(500);
  await cancelled.cancel();
  await cancelled.result().catch(() => {});
  await save(c, 'cancelled', cancelled.workflowId);
}

try {
  await main();
} finally {
  await scope.close();
}
