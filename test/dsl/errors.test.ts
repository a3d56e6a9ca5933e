/**
 * Malformed pipelines: each case is a small YAML text written to a temp file and compiled; the
 * case asserts the message and the exact line:col of one error (and that it is the only one
 * unless `count` says otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, compileFiles } from './helpers.ts';

interface Case {
  name: string;
  /** pipeline.yaml, or several files with the compiled one first. */
  yaml: string | Record<string, string>;
  file?: string;
  line: number;
  col: number;
  message: string;
  /** Number of errors expected (default 1). */
  count?: number;
  set?: string[];
}

/** BASE with one line replaced (1-based) or lines inserted after it. */
function edit(line: number, replacement: string, insert = false): string {
  const lines = BASE.split('\n');
  lines.splice(line - (insert ? 0 : 1), insert ? 0 : 1, ...replacement.split('\n'));
  return lines.join('\n');
}

const CASES: Case[] = [
  // --- structure and unknown keys
  { name: 'unknown top-level key', yaml: BASE.replace('steps:', 'step:'), line: 5, col: 1, message: "unknown key 'step' (did you mean 'steps'?)" },
  { name: 'unknown step key', yaml: edit(10, '    need: kb'), line: 10, col: 5, message: "unknown key 'need' (did you mean 'needs'?)" },
  { name: 'unknown with key', yaml: edit(14, '      learning_rat: 0.1'), line: 14, col: 7, message: "with: unknown key 'learning_rat' (did you mean 'learning_rate'?)" },
  { name: 'unknown nested key in teacher', yaml: edit(14, '      learning_rate: 0.1\n  - id: cv\n    uses: data.construct_verifiable\n    with:\n      input: x.json\n      teacher: { modle: gpt-4o }'), line: 19, col: 18, message: "with.teacher: unknown key 'modle' (did you mean 'model'?)", count: 2 },
  { name: 'unknown retry key', yaml: edit(10, '    retry: { max_attempt: 2 }', true), line: 11, col: 14, message: "unknown key 'max_attempt' (did you mean 'max_attempts'?)" },
  { name: 'unknown defaults key', yaml: edit(4, 'defaults:\n  queu: cpu', true), line: 6, col: 3, message: "unknown key 'queu' (did you mean 'queue'?)" },
  { name: 'unknown param key', yaml: edit(3, '  lr: { type: number, defualt: 0.01 }'), line: 3, col: 23, message: "unknown key 'defualt' (did you mean 'default'?)" },
  { name: 'missing name', yaml: BASE.replace('name: t\n', ''), line: 1, col: 1, message: "missing required key 'name'" },
  { name: 'no steps', yaml: 'name: t\nsteps: []\n', line: 2, col: 8, message: 'the pipeline has no steps' },
  { name: 'no steps key at all', yaml: 'name: t\n', line: 1, col: 1, message: 'the pipeline has no steps' },
  { name: 'steps is a mapping', yaml: 'name: t\nsteps:\n  kb: { uses: data.knowledge_base }\n', line: 3, col: 3, message: 'expected a list, got a mapping' },
  { name: 'step without id', yaml: edit(6, '  - name: kb'), line: 6, col: 5, message: "missing required key 'id'", count: 2 },
  { name: 'step without uses', yaml: edit(7, '    needs: []'), line: 6, col: 5, message: "step 'kb' has no 'uses'" },
  { name: 'step id with a space', yaml: edit(6, '  - id: my kb'), line: 6, col: 9, message: 'must start with a letter or _ and hold only letters, digits, _ and -' },
  { name: 'needs is a number', yaml: edit(10, '    needs: 3'), line: 10, col: 12, message: 'expected a string or a list, got number 3' },
  { name: 'document is a list', yaml: '- a\n- b\n', line: 1, col: 1, message: 'a pipeline is a YAML mapping' },
  { name: 'YAML syntax error', yaml: edit(12, '      model: "preset:tiny'), line: 12, col: 14, message: 'YAML: Missing closing "quote' },
  { name: 'unquoted expression in a flow mapping', yaml: edit(11, '    with: { model: preset:tiny, data: ${{ steps.kb.outputs.sft }} }\n'), line: 11, col: 40, message: 'YAML: Unexpected flow-map-start at node end (inside { } or [ ], put quotes around expressions: "${{ ... }}")' },
  { name: 'duplicate YAML key', yaml: edit(12, '      model: preset:tiny\n      model: preset:small'), line: 13, col: 7, message: 'YAML: Map keys must be unique' },

  // --- kinds, ids, needs, cycles
  { name: 'unknown step kind', yaml: edit(9, '    uses: train.sfx'), line: 9, col: 11, message: "unknown step kind 'train.sfx' (did you mean 'train.sft'?)" },
  { name: 'unknown step kind far from any', yaml: edit(7, '    uses: compile.everything'), line: 7, col: 11, message: "unknown step kind 'compile.everything'; run 'doctor-agent steps'" },
  { name: 'duplicate step id', yaml: edit(8, '  - id: kb'), line: 8, col: 9, message: "duplicate step id 'kb' (first declared on line 6)" },
  { name: 'needs a missing step', yaml: edit(10, '    needs: kbb'), line: 10, col: 12, message: "needs unknown step 'kbb' (did you mean 'kb'?)" },
  { name: 'needs a missing step in a list', yaml: edit(10, '    needs: [kb, search]'), line: 10, col: 17, message: "needs unknown step 'search'" },
  { name: 'needs itself', yaml: edit(10, '    needs: [kb, sft]'), line: 10, col: 17, message: "step 'sft' cannot need itself" },
  {
    name: 'cycle of three',
    yaml: 'name: t\nsteps:\n  - { id: a, uses: command, needs: c, with: { run: [echo] } }\n  - { id: b, uses: command, needs: a, with: { run: [echo] } }\n  - { id: c, uses: command, needs: b, with: { run: [echo] } }\n',
    line: 3, col: 36, message: 'cycle in needs: a → c → b → a',
  },
  {
    name: 'cycle of two beside a sound step',
    yaml: 'name: t\nsteps:\n  - { id: ok, uses: command, with: { run: [echo] } }\n  - { id: x, uses: command, needs: [ok, y], with: { run: [echo] } }\n  - { id: y, uses: command, needs: x, with: { run: [echo] } }\n',
    line: 4, col: 36, message: 'cycle in needs: x → y → x',
  },

  // --- expressions and references
  { name: 'unknown param in expression', yaml: edit(14, '      learning_rate: ${{ params.lrr }}'), line: 14, col: 22, message: "unknown param 'lrr' (did you mean 'lr'?)" },
  { name: 'undeclared output', yaml: edit(13, '      data: ${{ steps.kb.outputs.sftt }}'), line: 13, col: 13, message: "step 'kb' (data.knowledge_base) has no output 'sftt' (did you mean 'sft'?); its outputs: mcq, verifiable, sft, eval" },
  { name: 'output of a step not needed', yaml: edit(10, '    needs: []'), line: 13, col: 13, message: "step 'sft' reads steps.kb.outputs.sft but does not depend on 'kb': add 'kb' to its needs" },
  { name: 'unknown step in expression', yaml: edit(13, '      data: ${{ steps.kbx.outputs.sft }}'), line: 13, col: 13, message: "unknown step 'kbx' (did you mean 'kb'?)" },
  { name: 'own outputs', yaml: edit(13, '      data: ${{ steps.sft.outputs.checkpoint }}'), line: 13, col: 13, message: "step 'sft' cannot read its own outputs" },
  { name: 'output without outputs segment', yaml: edit(13, '      data: ${{ steps.kb.output.sft }}'), line: 13, col: 13, message: 'write steps.kb.outputs.NAME' },
  { name: 'unknown root name', yaml: edit(13, '      data: ${{ param.x }}'), line: 13, col: 13, message: "unknown name 'param' (did you mean 'params'?)" },
  { name: 'unknown run field', yaml: edit(13, '      data: ${{ run.folder }}/sft.json'), line: 13, col: 13, message: "unknown run field 'folder'; run has: id, dir, started_at, pipeline" },
  { name: 'expression inside text points at the expression', yaml: edit(13, '      data: prefix-${{ run.dri }}'), line: 13, col: 20, message: "unknown run field 'dri' (did you mean 'dir'?)" },
  { name: 'bad operator in expression', yaml: edit(14, '      learning_rate: ${{ params.lr + 1 }}'), line: 14, col: 36, message: "invalid expression: unexpected character '+' in expression" },
  { name: 'unterminated expression', yaml: edit(13, '      data: ${{ steps.kb.outputs.sft'), line: 13, col: 13, message: "invalid expression: unterminated expression: add '}}'" },
  { name: 'unterminated string literal', yaml: edit(10, "    if: ${{ params.name == 'abc }}", true), line: 11, col: 28, message: 'invalid expression: unterminated string literal' },
  { name: 'if reads a step not needed', yaml: edit(10, "    if: ${{ steps.kb.outputs.sft != '' }}\n    needs: []"), line: 10, col: 9, message: "step 'sft' reads steps.kb.outputs.sft but does not depend on 'kb'", count: 2 },
  { name: 'if with two expressions', yaml: edit(10, '    if: ${{ params.lr }} and ${{ params.name }}', true), line: 11, col: 9, message: 'if: write one expression' },
  { name: 'bare if with unknown param', yaml: edit(10, "    if: params.nme == 'abc'", true), line: 11, col: 9, message: "unknown param 'nme' (did you mean 'name'?)" },
  { name: 'queue reads a step output', yaml: edit(10, '    queue: ${{ steps.kb.outputs.sft }}', true), line: 11, col: 12, message: 'only params.* can be used in queue' },

  // --- types after substitution, kinds' own rules
  { name: 'string param where a number goes', yaml: edit(14, '      learning_rate: ${{ params.name }}'), line: 14, col: 22, message: 'with.learning_rate: expected a number, got string "abc" (after substituting params)' },
  { name: 'word where a number goes', yaml: edit(14, '      epochs: many'), line: 14, col: 15, message: 'with.epochs: expected a number, got string "many"' },
  { name: 'fraction where an integer goes', yaml: edit(14, '      epochs: 1.5'), line: 14, col: 15, message: 'with.epochs: expected an integer, got number 1.5' },
  { name: 'non-positive count', yaml: edit(14, '      batch_size: 0'), line: 14, col: 19, message: 'with.batch_size: must be > 0; got number 0' },
  { name: 'missing required with key', yaml: edit(13, '      max_seq_len: 256'), line: 11, col: 5, message: "missing required key 'data'" },
  { name: 'enum value with a typo', yaml: edit(7, '    uses: data.knowledge_base\n    with: { cot_style: ful }'), line: 8, col: 24, message: 'with.cot_style: must be one of "full", "brief"; got string "ful" (did you mean \'full\'?)' },
  {
    name: 'verifier type typo',
    yaml: 'name: t\nsteps:\n  - id: g\n    uses: rl.grpo\n    with:\n      policy: p\n      data: d.json\n      verifier: { type: rules }\n',
    line: 8, col: 25, message: 'with.verifier.type: type must be one of "rule", "llm", "model"; got string "rules" (did you mean \'rule\'?)',
  },
  {
    name: 'llm method without a teacher',
    yaml: 'name: t\nsteps:\n  - id: v\n    uses: data.construct_verifiable\n    with:\n      input: mcq.json\n      method: llm\n',
    line: 5, col: 5, message: 'with.teacher: method llm needs a teacher model',
  },
  {
    name: 'eval with both model and server',
    yaml: 'name: t\nsteps:\n  - id: e\n    uses: eval.sglang\n    with:\n      model: m\n      server: { base_url: "http://127.0.0.1:30000/v1", model: m }\n      data: e.json\n      api: chat\n',
    line: 6, col: 7, message: 'with: set exactly one of with.model (a checkpoint to serve) or with.server (a running server)',
  },
  { name: 'command run as a string without shell', yaml: 'name: t\nsteps:\n  - id: c\n    uses: command\n    with:\n      run: python train.py\n', line: 6, col: 12, message: 'with.run: run must be an argv array such as [python, train.py]' },
  { name: 'command with an empty argv', yaml: 'name: t\nsteps:\n  - id: c\n    uses: command\n    with:\n      run: []\n', line: 6, col: 12, message: 'with.run: must have at least 1 item' },
  { name: 'command resume_args without {checkpoint}', yaml: 'name: t\nsteps:\n  - id: c\n    uses: command\n    with:\n      run: [python, t.py]\n      resume_args: [--resume]\n', line: 7, col: 20, message: 'with.resume_args: resume_args must contain {checkpoint}' },
  {
    name: 'undeclared output of a command step',
    yaml: 'name: t\nsteps:\n  - id: c\n    uses: command\n    with:\n      run: [python, t.py]\n      outputs: { model: out/model }\n  - id: d\n    uses: command\n    needs: c\n    with:\n      run: [cat, "${{ steps.c.outputs.modle }}"]\n',
    line: 12, col: 19, message: "step 'c' (command) has no output 'modle' (did you mean 'model'?); its outputs: model",
  },

  // --- durations
  { name: 'bad step timeout', yaml: edit(10, '    timeout: 5 minutes', true), line: 11, col: 14, message: 'not a duration: a duration is a number with a unit' },
  { name: 'bare number as duration', yaml: edit(10, '    heartbeat: 30', true), line: 11, col: 16, message: 'expected a string, got number 30' },
  { name: 'attempt longer than the step', yaml: edit(4, 'defaults:\n  timeout: 1h', true).replace('    needs: kb', '    needs: kb\n    attempt_timeout: 90m'), line: 13, col: 22, message: 'attempt_timeout (90m) is longer than timeout (1h)' },
  { name: 'bad duration in defaults', yaml: edit(4, 'defaults:\n  retry: { initial_interval: 1x }', true), line: 6, col: 30, message: 'not a duration' },
  { name: 'bad duration from a param', yaml: edit(4, '  t: { type: string, default: soon }', true).replace('    needs: kb', '    needs: kb\n    timeout: ${{ params.t }}'), line: 12, col: 14, message: 'timeout: not a duration ("soon")' },

  // --- params
  { name: 'enum param without values', yaml: edit(3, '  lr: { type: enum, default: a }'), line: 3, col: 15, message: "param 'lr' of type enum needs values" },
  { name: 'param default of the wrong type', yaml: edit(3, '  lr: { type: number, default: fast }'), line: 3, col: 32, message: "default of param 'lr': expected a number, got string \"fast\"" },
  { name: 'unknown param type', yaml: edit(3, '  lr: { type: strng }'), line: 3, col: 15, message: 'must be one of "string", "number", "integer", "boolean", "path", "enum"; got string "strng" (did you mean \'string\'?)' },
  { name: 'values on a non-enum param', yaml: edit(3, '  lr: { type: number, values: [1, 2], default: 1 }'), line: 3, col: 23, message: "values only apply to type enum (param 'lr' is number)" },
  { name: 'required param not given', yaml: edit(4, '  ckpt: { type: path }', true), line: 5, col: 3, message: "param 'ckpt' is required: pass --set ckpt=PATH (or --params FILE)" },
  { name: 'param name with a dash', yaml: edit(4, '  my-param: { type: string, default: x }', true), line: 5, col: 3, message: "invalid name 'my-param': param names hold only letters, digits and _" },

  // --- extends
  { name: 'remove without extends', yaml: edit(10, '    remove: true', true), line: 11, col: 5, message: 'remove: true only applies to a pipeline that extends another' },
  { name: 'extends a missing file', yaml: 'extends: nowhere.yaml\nname: t\n', line: 1, col: 10, message: 'cannot read nowhere.yaml: file not found' },
  { name: 'extends cycle', yaml: { 'a.yaml': 'extends: b.yaml\nname: a\n', 'b.yaml': 'name: b\nextends: a.yaml\n' }, file: 'b.yaml', line: 2, col: 10, message: 'extends cycle: a.yaml → b.yaml → a.yaml' },
  { name: 'extends itself', yaml: { 'self.yaml': 'name: s\nextends: ./self.yaml\nsteps: []\n' }, file: 'self.yaml', line: 2, col: 10, message: 'extends cycle: self.yaml → self.yaml' },
  { name: 'error in the parent names the parent', yaml: { 'child.yaml': 'extends: sub/parent.yaml\nname: c\n', 'sub/parent.yaml': 'name: p\nsteps:\n  - id: a\n    uses: comand\n' }, file: 'sub/parent.yaml', line: 4, col: 11, message: "unknown step kind 'comand' (did you mean 'command'?)" },
  {
    name: 'inherited step reads a removed step',
    yaml: { 'child.yaml': 'extends: parent.yaml\nsteps:\n  - { id: a, remove: true }\n', 'parent.yaml': BASE.replace('id: kb', 'id: a').replace('needs: kb', 'needs: []').replace('steps.kb.', 'steps.a.') },
    file: 'parent.yaml', line: 13, col: 13, message: "unknown step 'a'",
  },
  { name: 'removing a step the parent lacks', yaml: { 'child.yaml': 'extends: parent.yaml\nsteps:\n  - { id: zz, remove: true }\n', 'parent.yaml': BASE }, file: 'child.yaml', line: 3, col: 11, message: "cannot remove step 'zz': parent.yaml has no step of that id" },
  { name: 'new step in a child without uses', yaml: { 'child.yaml': 'extends: parent.yaml\nsteps:\n  - id: extra\n    needs: kb\n', 'parent.yaml': BASE }, file: 'child.yaml', line: 3, col: 5, message: "step 'extra' has no 'uses'" },

  // --- --set
  { name: '--set of an unknown param', yaml: BASE, set: ['lrr=1'], file: '--set', line: 0, col: 0, message: "unknown param 'lrr' (did you mean 'lr'?); the pipeline declares: lr, name" },
  { name: '--set of the wrong type', yaml: BASE, set: ['lr=fast'], file: '--set', line: 0, col: 0, message: 'param \'lr\': expected a number, got string "fast"' },
  { name: '--set without =', yaml: BASE, set: ['lr'], file: '--set', line: 0, col: 0, message: "'lr' is not NAME=VALUE" },
];

test(`at least 40 malformed pipelines are in the table (${CASES.length})`, () => {
  assert.ok(CASES.length >= 40);
});

for (const c of CASES) {
  test(`rejects: ${c.name}`, () => {
    const files = typeof c.yaml === 'string' ? { 'pipeline.yaml': c.yaml } : c.yaml;
    const r = compileFiles(files, { set: c.set });
    assert.equal(r.plan, undefined, 'expected the pipeline to be rejected');
    const file = c.file ?? 'pipeline.yaml';
    const hit = r.errors.find((d) => d.message.includes(c.message));
    assert.ok(hit, `no error containing ${JSON.stringify(c.message)}; got:\n${r.formatted}`);
    assert.deepEqual({ file: hit.file, line: hit.line, col: hit.col }, { file, line: c.line, col: c.col }, r.formatted);
    assert.equal(r.errors.length, c.count ?? 1, `error count; got:\n${r.formatted}`);
  });
}

test('several errors are reported at once, in file order, with excerpt and caret', () => {
  const yaml = BASE.replace('uses: train.sft', 'uses: train.sfx').replace('uses: data.knowledge_base', 'uses: data.knowledge_base\n    timeout: 1 week');
  const r = compileFiles({ 'pipeline.yaml': yaml });
  assert.equal(r.errors.length, 1, 'a structural error stops before the kind check');
  const r2 = compileFiles({ 'pipeline.yaml': BASE.replace('uses: train.sft', 'uses: train.sfx').replace('needs: kb', 'needs: [kb, nope]') });
  assert.deepEqual(r2.errors.map((d) => [d.line, d.col]), [[9, 11], [10, 17]]);
  assert.match(r2.formatted!, /^pipeline\.yaml:9:11: unknown step kind 'train\.sfx'.*\n {2}9 \| {5}uses: train\.sfx\n {2} {2}\| {11}\^/);
  assert.match(r2.formatted!, /\n\n2 errors$/);
});
