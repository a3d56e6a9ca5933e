/**
 * Params stay data: a value given with --set (or a default) that holds `${{ ... }}` text reaches
 * the step as that text. It is never evaluated when the step's `with` is resolved at run time,
 * whether it fills a whole field, part of a string, an argv entry, an env value or shell text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolveWith, type ExprContext } from '../../dsl/expr.ts';
import { compileText } from './helpers.ts';

const PIPELINE = `name: t
params:
  name: { type: string, default: abc }
steps:
  - id: a
    uses: command
    with: { run: [node, -e, ""], outputs: { p: p.txt } }
  - id: b
    uses: command
    needs: a
    with:
      run: [echo, "\${{ params.name }}", "pre-\${{ params.name }}-\${{ steps.a.outputs.p }}"]
      env: { NAME: "\${{ params.name }}" }
      outputs: { q: "\${{ params.name }}.txt" }
`;

const CTX: ExprContext = {
  params: { name: 'unused' },
  steps: { a: { outputs: { p: '/out/p.txt' } } },
  run: { id: 'r1', dir: '/runs/r1', startedAt: '2026-01-01T00:00:00Z', pipeline: 't' },
};

for (const value of ['${{ run.dir }}', '${{ steps.a.outputs.p }}', "x ${{ 'lit' }} y", '${{ run.id }}}} }}', "it's ${{"]) {
  test(`a param set to ${JSON.stringify(value)} is passed on as text, not evaluated at run time`, () => {
    const r = compileText(PIPELINE, { set: [`name=${value}`] });
    assert.ok(r.plan, r.formatted);
    const step = r.plan.steps.find((s) => s.id === 'b')!;
    const w = resolveWith(step.uses, step.with, CTX) as { run: string[]; env: Record<string, string>; outputs: Record<string, string> };
    assert.deepEqual(w.run, ['echo', value, `pre-${value}-/out/p.txt`]);
    assert.equal(w.env.NAME, value);
    assert.equal(w.outputs.q, `${value}.txt`);
  });
}

test('shell text: a param holding ${{ }} text is one quoted word of that text', () => {
  const value = '${{ run.dir }}; touch pwned';
  const r = compileText(`name: t
params:
  name: { type: string, default: abc }
steps:
  - id: c
    uses: command
    with: { shell: true, run: "printf %s \${{ params.name }}" }
`, { set: [`name=${value}`] });
  assert.ok(r.plan, r.formatted);
  const step = r.plan.steps[0];
  const w = resolveWith(step.uses, step.with, CTX) as { run: string };
  // What a real shell makes of the text: one word, the value as it was given.
  const r2 = spawnSync('/bin/sh', ['-c', w.run], { encoding: 'utf8' });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(r2.stdout, value);
});
