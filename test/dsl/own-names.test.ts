/**
 * Names are looked up among what the pipeline wrote, never among JavaScript's built-ins:
 * `constructor`, `toString`, `__proto__` are unknown params and names like any other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, resolveValue } from '../../dsl/expr.ts';
import { compileFiles, compileText } from './helpers.ts';

const P = `name: t
params:
  name: { type: string, default: abc }
steps:
  - id: a
    uses: command
    with: { run: [echo, "\${{ params.name }}"], outputs: { constructor: c.txt } }
  - id: b
    uses: command
    needs: a
    with: { run: [echo, "\${{ steps.a.outputs.constructor }}"] }
`;

test('--set of a built-in name is an unknown param, with the declared ones listed', () => {
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    const r = compileText(P, { set: [`${name}=1`] });
    assert.equal(r.plan, undefined, `--set ${name}=1 was accepted`);
    assert.deepEqual(r.errors.map((e) => [e.file, e.message]), [['--set', `unknown param '${name}'; the pipeline declares: name`]]);
  }
  const typo = compileText(P, { set: ['nmae=1'] });
  assert.match(typo.errors[0].message, /unknown param 'nmae' \(did you mean 'name'\?\)/);
});

test('a --params file naming a built-in is refused where it says so', () => {
  const r = compileFiles({ 'pipeline.yaml': P, 'p.yaml': 'name: x\ntoString: 1\n' }, { paramsFile: 'p.yaml' });
  assert.deepEqual(r.errors.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}`), ["p.yaml:2:1: unknown param 'toString'; the pipeline declares: name"]);
});

test('built-in names inside expressions are unknown names, params and outputs', () => {
  const cases: [string, RegExp][] = [
    ['${{ params.constructor }}', /unknown param 'constructor'; declared params: name/],
    ['${{ params.toString }}', /unknown param 'toString'; declared params: name/],
    ['${{ constructor }}', /unknown name 'constructor': expressions read params\.NAME/],
    ['${{ toString == 1 }}', /unknown name 'toString'/],
    ['${{ steps.a.outputs.toString }}', /step 'a' \(command\) has no output 'toString'; its outputs: constructor/],
    ["${{ steps.a.outputs['__proto__'] }}", /has no output '__proto__'/],
  ];
  for (const [expr, message] of cases) {
    const r = compileText(P.replace('"${{ steps.a.outputs.constructor }}"', JSON.stringify(expr)));
    assert.equal(r.plan, undefined, `${expr} compiled`);
    assert.equal(r.errors.length, 1, r.formatted);
    assert.match(r.errors[0].message, message, expr);
    assert.equal(r.errors[0].line, 11, expr);
  }
  // An output the step declares is read, whatever its name.
  const ok = compileText(P);
  assert.ok(ok.plan, ok.formatted);
});

test('evaluation reads own values only: built-ins read as null', () => {
  assert.equal(evaluate('toString', {}), null);
  assert.equal(evaluate('constructor == null', {}), true);
  assert.equal(evaluate('params.constructor', { params: {} }), null);
  assert.equal(evaluate("params['__proto__']", { params: {} }), null);
  assert.equal(evaluate("steps.a.outputs['toString']", { steps: { a: { outputs: {} } } }), null);
  assert.equal(evaluate('steps.a.outputs.list.length', { steps: { a: { outputs: { list: [1, 2] } } } }), null);
  assert.equal(resolveValue('x${{ params.hasOwnProperty }}y', { params: { name: 'v' } }), 'xy');
  // Own values, whatever their names, are read.
  assert.equal(evaluate('steps.a.outputs.constructor', { steps: { a: { outputs: { constructor: '/p' } } } }), '/p');
});

test('__proto__ as a key (params, with.env, with.outputs) is refused where it is written', () => {
  const cases = [
    ['name: t\nparams:\n  __proto__: { type: string, default: x }\nsteps:\n  - id: a\n    uses: command\n    with: { run: [echo] }\n', 3, 3],
    ['name: t\nsteps:\n  - id: a\n    uses: command\n    with:\n      run: [echo]\n      env: { __proto__: x }\n', 7, 14],
    ['name: t\nsteps:\n  - id: a\n    uses: command\n    with:\n      run: [echo]\n      outputs:\n        __proto__: x.txt\n', 8, 9],
  ] as const;
  for (const [yaml, line, col] of cases) {
    const r = compileText(yaml);
    assert.deepEqual(r.errors.map((e) => [e.line, e.col, e.message]), [[line, col, "YAML: the key '__proto__' is not allowed: choose another name"]], yaml);
  }
});
