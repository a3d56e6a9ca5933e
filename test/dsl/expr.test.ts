import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluate,
  evaluateCondition,
  ExprError,
  parseExpression,
  printExpression,
  references,
  resolveValue,
  simplify,
  substitute,
  type ExprContext,
} from '../../dsl/expr.ts';

const ctx: ExprContext = {
  params: { lr: 0.002, name: 'tiny', on: true, off: false, n: 3, empty: '' },
  steps: { kb: { outputs: { sft: 'runs/r1/kb/sft.json', count: 7 } }, skipped: null },
  run: { id: 'r1', dir: 'runs/r1', startedAt: '2026-01-02T03:04:05Z', pipeline: 'demo' },
};

test('names read params, step outputs and run fields', () => {
  assert.equal(evaluate('params.lr', ctx), 0.002);
  assert.equal(evaluate('steps.kb.outputs.sft', ctx), 'runs/r1/kb/sft.json');
  assert.equal(evaluate("steps['kb'].outputs['count']", ctx), 7);
  assert.equal(evaluate('run.started_at', ctx), '2026-01-02T03:04:05Z');
  assert.equal(evaluate('run.pipeline', ctx), 'demo');
});

test('missing and skipped values read as null', () => {
  assert.equal(evaluate('steps.skipped.outputs.sft', ctx), null);
  assert.equal(evaluate('steps.never.outputs.sft', ctx), null);
  assert.equal(evaluate('params.nothing', ctx), null);
});

test('|| and && return an operand; ! negates; falsy values are false, 0, empty string, null', () => {
  assert.equal(evaluate('steps.skipped.outputs.sft || steps.kb.outputs.sft', ctx), 'runs/r1/kb/sft.json');
  assert.equal(evaluate("params.empty || 'fallback'", ctx), 'fallback');
  assert.equal(evaluate('params.n && params.name', ctx), 'tiny');
  assert.equal(evaluate('params.off && params.name', ctx), false);
  assert.equal(evaluate('!params.empty', ctx), true);
  assert.equal(evaluate('!0', ctx), true);
  assert.equal(evaluate('!!null', ctx), false);
});

test('comparisons have no type conversion; precedence and parentheses', () => {
  assert.equal(evaluate("params.name == 'tiny'", ctx), true);
  assert.equal(evaluate("params.n == '3'", ctx), false);
  assert.equal(evaluate('params.n != 4', ctx), true);
  assert.equal(evaluate('params.n >= 3 && params.n < 4', ctx), true);
  assert.equal(evaluate("'b' > 'a'", ctx), true);
  assert.equal(evaluate("params.n > 'a'", ctx), false);
  assert.equal(evaluate('null == steps.skipped.outputs.x', ctx), true);
  // && binds tighter than ||
  assert.equal(evaluate('true || false && false', ctx), true);
  assert.equal(evaluate('(true || false) && false', ctx), false);
  assert.equal(evaluate("'it''s' == \"it's\"", ctx), true);
  assert.equal(evaluate('-1.5e1', ctx), -15);
});

test('syntax errors carry the offset of the problem', () => {
  const cases: [string, number, RegExp][] = [
    ['params.lr +', 10, /unexpected character '\+'/],
    ["params.name == 'x", 15, /unterminated string literal/],
    ['(params.lr', 10, /expected '\)'/],
    ['params.', 7, /expected a name after '\.'/],
    ['', 0, /empty expression/],
    ['a b', 2, /unexpected 'b'/],
  ];
  for (const [text, offset, message] of cases) {
    assert.throws(() => parseExpression(text), (err: unknown) => err instanceof ExprError && err.offset === offset && message.test(err.message), text);
  }
});

test('resolveValue keeps the type of a whole expression and interpolates text', () => {
  const value = {
    lr: '${{ params.lr }}',
    flag: '${{ params.on }}',
    path: '${{ run.dir }}/out/${{ params.name }}.json',
    empty: 'x-${{ steps.skipped.outputs.a }}-y',
    list: ['${{ params.n }}', 'plain'],
    nested: { data: '${{ steps.skipped.outputs.sft || steps.kb.outputs.sft }}' },
    number: 5,
  };
  assert.deepEqual(resolveValue(value, ctx), {
    lr: 0.002,
    flag: true,
    path: 'runs/r1/out/tiny.json',
    empty: 'x--y',
    list: [3, 'plain'],
    nested: { data: 'runs/r1/kb/sft.json' },
    number: 5,
  });
});

test('conditions are written with or without ${{ }}', () => {
  assert.equal(evaluateCondition("${{ params.name != '' }}", ctx), true);
  assert.equal(evaluateCondition("params.name == 'other'", ctx), false);
  assert.equal(evaluateCondition('steps.skipped.outputs.sft', ctx), false);
});

test('references lists every name with the offset of its ${{', () => {
  const refs = references({ a: 'x ${{ params.lr || steps.kb.outputs.sft }}', b: ['${{ run.id }}'] });
  assert.deepEqual(refs.map((r) => [r.path.join('.'), r.offset]), [
    ['params.lr', 2],
    ['steps.kb.outputs.sft', 2],
    ['run.id', 0],
  ]);
  assert.deepEqual(references('no expressions'), []);
});

test('substitute resolves params only, folds constants and keeps run-time names', () => {
  const roots = new Set(['params']);
  assert.equal(substitute('${{ params.lr }}', ctx, roots), 0.002);
  assert.equal(substitute("${{ params.name == 'tiny' }}", ctx, roots), true);
  assert.equal(substitute('${{ steps.kb.outputs.sft }}', ctx, roots), '${{ steps.kb.outputs.sft }}');
  assert.equal(substitute('${{ params.empty || steps.kb.outputs.sft }}', ctx, roots), '${{ steps.kb.outputs.sft }}');
  assert.equal(substitute('${{ params.name || steps.kb.outputs.sft }}', ctx, roots), 'tiny');
  assert.equal(substitute('${{ run.dir }}/${{ params.name }}', ctx, roots), '${{ run.dir }}/tiny');
  assert.equal(substitute("${{ steps.kb.outputs.sft == params.name }}", ctx, roots), "${{ steps.kb.outputs.sft == 'tiny' }}");
  // The substituted text evaluates at run time to what the original would have.
  const original = "${{ (params.off || steps.kb.outputs.count > 5) && params.name }}";
  const later = substitute(original, ctx, roots) as string;
  assert.equal(resolveValue(later, ctx), resolveValue(original, ctx));
});

test('printExpression round-trips through the parser', () => {
  for (const text of ["a.b || c.d && !e.f", "(a.x || b.y) && c.z == 'it''s'", "!(a.b == 1)", "x['odd key'].y != null"]) {
    const e = parseExpression(text);
    assert.deepEqual(parseExpression(printExpression(e)), e, text);
  }
  const e = simplify(parseExpression("params.name == 'tiny' && steps.kb.outputs.sft"), ctx, new Set(['params']));
  assert.equal(printExpression(e), 'steps.kb.outputs.sft');
});

test('as a condition only truthiness is kept, which folds further; the result decides the same', () => {
  const roots = new Set(['params']);
  const cases: [string, string][] = [
    ['steps.kb.outputs.sft && params.on', 'steps.kb.outputs.sft'],
    ['steps.kb.outputs.sft && params.off', 'false'],
    ['steps.kb.outputs.sft || params.on', 'true'],
    ['steps.kb.outputs.sft || params.off', 'steps.kb.outputs.sft'],
    ['!(steps.kb.outputs.sft && params.on)', '!steps.kb.outputs.sft'],
  ];
  for (const [text, folded] of cases) {
    const e = simplify(parseExpression(text), ctx, roots, true);
    assert.equal(printExpression(e), folded, text);
    for (const steps of [ctx.steps, {}]) {
      assert.equal(evaluateCondition(printExpression(e), { ...ctx, steps }), evaluateCondition(text, { ...ctx, steps }), text);
    }
  }
  // As a value, `x && true` is not x.
  assert.equal(printExpression(simplify(parseExpression('steps.kb.outputs.sft && params.on'), ctx, roots)), 'steps.kb.outputs.sft && true');
});
