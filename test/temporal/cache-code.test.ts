/**
 * On a real dev server: the step cache notices a change of the code that runs a step. A
 * built-in job of a kind of its own (in a temporary jobs folder, through DOCTOR_AGENT_JOBS_DIR,
 * so the project's files are never edited) imports a helper; after the helper is edited the
 * next run runs the step again, says why in the step log, the step record and the run's
 * progress, and the run after it takes the new result from the cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRunView } from '../../cli/format/run-view.ts';
import { runView, startRun } from '../../runtime/runs.ts';
import { readIdentity } from '../../runtime/step-identity.ts';
import { progressQuery } from '../../workflows/definitions.ts';
import { makePlan, startTestServer, startWorker } from './helpers.ts';

const KIND = 'cachetest.code';

test('editing a step kind\'s source invalidates its cache entry; unchanged code hits', async (t) => {
  const jobs = mkdtempSync(join(tmpdir(), 'da-jobs-'));
  writeFileSync(join(jobs, `${KIND}.ts`), `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { value } from './helper.ts';
export async function run(ctx: { outDir: string }) {
  const file = join(ctx.outDir, 'out.txt');
  writeFileSync(file, value);
  return { file };
}
`);
  const helper = join(jobs, 'helper.ts');
  writeFileSync(helper, "export const value = 'one';\n");
  const before = process.env.DOCTOR_AGENT_JOBS_DIR;
  process.env.DOCTOR_AGENT_JOBS_DIR = jobs; // the worker's hasher and its jobs (children) both read it
  t.after(() => {
    if (before === undefined) delete process.env.DOCTOR_AGENT_JOBS_DIR;
    else process.env.DOCTOR_AGENT_JOBS_DIR = before;
    rmSync(jobs, { recursive: true, force: true });
  });

  const s = await startTestServer(t);
  await startWorker(t, s);
  const plan = makePlan('code-change', [{ id: 'toy', uses: KIND, cache: true, with: { n: 1 }, outputs: ['file'] }]);
  const run = async () => {
    const h = await startRun(s.client, plan);
    const r = await h.result();
    return { id: h.workflowId, state: r.steps.toy.state, file: r.steps.toy.outputs?.file as string, h };
  };

  const first = await run();
  assert.equal(first.state, 'succeeded');
  assert.equal(readFileSync(first.file, 'utf8'), 'one');
  const record = readIdentity(s.store.stepPath(first.id, 'toy'));
  assert.equal(record?.runner, 'builtin');
  assert.match(record?.code?.sources ?? '', /^[0-9a-f]{64}$/);
  assert.equal(record?.code?.package, JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);

  const same = await run();
  assert.equal(same.state, 'cached', 'unchanged code: the cached result');

  writeFileSync(helper, "export const value = 'two';\n");
  const edited = await run();
  assert.equal(edited.state, 'succeeded', 'edited code: the step runs again');
  assert.equal(readFileSync(edited.file, 'utf8'), 'two');
  const why = `code of ${KIND} changed since run ${first.id} (${helper})`;
  assert.ok(readFileSync(s.store.stepLog(edited.id, 'toy'), 'utf8').includes(`cache miss: ${why}`));
  assert.equal(readIdentity(s.store.stepPath(edited.id, 'toy'))?.cacheMiss, why);
  const p = await edited.h.query(progressQuery);
  assert.equal(p.steps.find((x) => x.id === 'toy')?.cacheMiss, why);
  assert.ok(formatRunView(await runView(s.client, edited.id)).includes(`\n       cache miss: ${why}`), 'status shows it under the step');

  const again = await run();
  assert.equal(again.state, 'cached', 'the new result is cached in turn');
});
