/** The step-level `grace` setting (SIGTERM → SIGKILL): defaults by kind and queue, overrides, validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileText } from './helpers.ts';

const pipeline = (extra: { defaults?: string; kb?: string; sft?: string } = {}) => `name: t
${extra.defaults ? `defaults:\n  ${extra.defaults}\n` : ''}params:
  g: { type: string, default: 45s }
steps:
  - id: kb
    uses: data.knowledge_base
${extra.kb ? `    ${extra.kb}\n` : ''}  - id: sft
    uses: train.sft
    needs: kb
${extra.sft ? `    ${extra.sft}\n` : ''}    with:
      model: preset:tiny
      data: \${{ steps.kb.outputs.sft }}
  - id: sh
    uses: command
    queue: gpu
    with: { run: [echo, hi] }
`;

function graces(yaml: string): Record<string, number | undefined> {
  const r = compileText(yaml);
  assert.ok(r.plan, r.formatted);
  return Object.fromEntries(r.plan.steps.map((s) => [s.id, s.timeouts.graceMs]));
}

test('grace defaults: 10s, 5m for the training kinds and on the gpu queue', () => {
  assert.deepEqual(graces(pipeline()), { kb: 10_000, sft: 300_000, sh: 300_000 });
});

test('grace from the step, from defaults, from a param', () => {
  assert.deepEqual(graces(pipeline({ defaults: 'grace: 1m', sft: 'grace: 20m' })), { kb: 60_000, sft: 1_200_000, sh: 60_000 });
  assert.equal(graces(pipeline({ kb: 'grace: ${{ params.g }}' })).kb, 45_000);
});

test('a bad grace is an error at its line', () => {
  const r = compileText(pipeline({ sft: 'grace: soon' }));
  assert.equal(r.plan, undefined);
  const d = r.errors.find((e) => /duration/.test(e.message));
  assert.ok(d, r.formatted);
  assert.deepEqual([d.line, d.lineText?.trim()], [10, 'grace: soon']);
  const long = compileText(pipeline({ sft: 'attempt_timeout: 1m\n    grace: 2m' }));
  assert.match(long.formatted ?? '', /grace \(2m\) is longer than the attempt's limit \(1m\)/);
});

test('a stopping worker waits longer for its jobs than the longest default grace', async () => {
  const { SHUTDOWN_FORCE } = await import('../../worker.ts');
  const { BUILTIN_DEFAULTS } = await import('../../dsl/schema.ts');
  const { parseDuration } = await import('../../dsl/duration.ts');
  assert.ok(parseDuration(SHUTDOWN_FORCE)! > parseDuration(BUILTIN_DEFAULTS.gpuGrace)!, `${SHUTDOWN_FORCE} vs ${BUILTIN_DEFAULTS.gpuGrace}`);
});
