/**
 * `${{ }}` values in a command step's shell text are quoted for /bin/sh: whatever a param or an
 * earlier step's output holds, it reaches the program as one word and never runs as shell code.
 * Checked with a real shell, the way the supervisor starts the step (spawn with shell: true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveWith, shellQuote, type ExprContext } from '../../dsl/expr.ts';
import type { PlanStep } from '../../dsl/plan.ts';
import { commandLaunch, parseCommandParams } from '../../runtime/command.ts';
import { compileText } from './helpers.ts';

const NASTY = [
  'x; touch pwned',
  '$(touch pwned)',
  '`touch pwned`',
  "it's | touch pwned",
  'a && touch pwned #',
  '{out_dir} ${{ run.id }} ${HOME}',
  'line\ntouch pwned',
  '',
];

/** Runs the step's shell text as the supervisor would; returns the folder it ran in. */
function runShell(step: PlanStep, ctx: ExprContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'shell-quote-'));
  const p = parseCommandParams(resolveWith(step.uses, step.with, ctx), step.id);
  const launch = commandLaunch(p, { outDir: dir, runId: 'r1', stepId: step.id, attempt: 1 });
  assert.equal(launch.shell, true);
  const r = spawnSync(launch.file, launch.args, { shell: true, cwd: launch.cwd, env: { ...process.env, ...launch.env }, encoding: 'utf8' });
  assert.equal(r.status, 0, `${launch.file}\n${r.stderr}`);
  return dir;
}

const PIPELINE = `name: t
params:
  name: { type: string, default: abc }
steps:
  - id: a
    uses: command
    with: { run: [node, -e, ""], outputs: { p: p.txt } }
  - id: c
    uses: command
    needs: a
    with:
      shell: true
      run: "printf '%s|' \${{ params.name }} > args.txt; printf '%s|' \${{ steps.a.outputs.p }} >> args.txt; printf '%s|' pre\${{ params.name }}post >> args.txt"
`;

test('a param or step output in shell text is one quoted word, inert in a real shell', () => {
  for (const value of NASTY) {
    const r = compileText(PIPELINE, { set: [`name=${value}`] });
    assert.ok(r.plan, r.formatted);
    const step = r.plan.steps.find((s) => s.id === 'c')!;
    const dir = runShell(step, { steps: { a: { outputs: { p: value } } }, run: { id: 'r1', dir: '/tmp/r1', startedAt: 't', pipeline: 't' } });
    assert.equal(existsSync(join(dir, 'pwned')), false, `value ${JSON.stringify(value)} ran as shell code: ${String(step.with.run)}`);
    assert.equal(readFileSync(join(dir, 'args.txt'), 'utf8'), `${value}|${value}|pre${value}post|`, `value ${JSON.stringify(value)}`);
  }
});

test('a whole-string expression in shell text is quoted too, and plain words stay readable', () => {
  const r = compileText(`name: t
params:
  cmd: { type: string, default: "touch pwned" }
  n: { type: integer, default: 3 }
steps:
  - id: c
    uses: command
    with: { shell: true, run: "\${{ params.cmd }}" }
  - id: d
    uses: command
    with: { shell: true, run: "echo \${{ params.n }} > n.txt" }
`);
  assert.ok(r.plan, r.formatted);
  const [c, d] = r.plan.steps;
  assert.equal(c.with.run, "'touch pwned'", 'one word: a program named "touch pwned", not touch with an argument');
  assert.equal(d.with.run, 'echo 3 > n.txt');
  assert.equal(readFileSync(join(runShell(d, {}), 'n.txt'), 'utf8'), '3\n');
});

test('argv steps are not quoted: the program gets the value as written', () => {
  const r = compileText(`name: t
params:
  name: { type: string, default: "a b; c" }
steps:
  - id: c
    uses: command
    with: { run: [echo, "\${{ params.name }}"] }
`);
  assert.ok(r.plan, r.formatted);
  assert.deepEqual(r.plan.steps[0].with.run, ['echo', 'a b; c']);
});

test('shellQuote: POSIX single quotes, nothing left for the shell or the placeholders to expand', () => {
  assert.equal(shellQuote('plain/path-1.txt'), 'plain/path-1.txt');
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  assert.doesNotMatch(shellQuote('${{ run.id }} {out_dir}'), /\$\{\{|\{out_dir\}/);
});

test('${{ }} inside quotes the shell text opens is an error at the expression (quoting it again would end those quotes)', () => {
  const step = (run: string) => `name: t\nparams:\n  name: { type: string, default: abc }\nsteps:\n  - id: c\n    uses: command\n    with:\n      shell: true\n      run: >-\n        ${run}\n`;
  const message = 'in shell text, write ${{ }} outside quotes: its value is quoted for the shell (one word, whatever it holds)';
  for (const run of ["echo '${{ params.name }}'", 'echo "x ${{ params.name }}"', "echo 'a' \"b ${{ params.name }}\""]) {
    const r = compileText(step(run));
    assert.deepEqual(r.errors.map((e) => [e.line, e.col, e.message]), [[10, 9 + run.indexOf('${{'), message]], run);
  }
  for (const run of ["echo 'a' ${{ params.name }} \"b\"", "echo \\' ${{ params.name }}", 'echo "\\"" ${{ params.name }}']) {
    const r = compileText(step(run));
    assert.ok(r.plan, `${run}: ${r.formatted}`);
  }
});
