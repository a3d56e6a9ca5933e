/** The generated docs and JSON Schema are current, and the schema really checks pipelines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse, stringify } from 'yaml';
import { compileText } from './helpers.ts';
import { pipelineLanguageMarkdown } from '../../dsl/docs.ts';
import { pipelineJsonSchema } from '../../dsl/json-schema.ts';
import { allKinds } from '../../dsl/kinds/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(root + p, 'utf8');

test('docs/pipeline-language.md is generated from the current schemas (run npm run gen:docs)', () => {
  assert.equal(read('docs/pipeline-language.md'), pipelineLanguageMarkdown());
});

test('schema/pipeline.schema.json is generated from the current schemas (run npm run gen:docs)', () => {
  assert.equal(read('schema/pipeline.schema.json'), JSON.stringify(pipelineJsonSchema(), null, 2) + '\n');
});

test('the docs describe every kind and its parameters', () => {
  const md = pipelineLanguageMarkdown();
  for (const kind of allKinds()) {
    assert.ok(md.includes(`### ${kind.name}`), kind.name);
    for (const key of Object.keys(kind.params.shape)) assert.ok(md.includes(`| \`${key}\` |`), `${kind.name}.${key}`);
  }
});

test('the JSON Schema accepts the shipped pipelines and rejects typos a language server should flag', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(pipelineJsonSchema());
  for (const file of ['pipelines/huatuo.yaml', 'pipelines/huatuo-tiny.yaml', 'pipelines/nightly-eval.yaml']) {
    assert.ok(validate(parse(read(file))), `${file}: ${JSON.stringify(validate.errors)}`);
  }
  const bad = [
    { name: 'x', steps: [{ id: 'a', uses: 'train.sft', with: { model: 'm', data: 'd', learning_rat: 1 } }] },
    { name: 'x', steps: [{ id: 'a', uses: 'train.sfx' }] },
    { name: 'x', steps: [{ id: 'a', uses: 'train.sft', with: { model: 'm', data: 'd', epochs: 'many' } }] },
    { name: 'x', steps: [{ id: 'a', uses: 'command', timeout: '5 minutes', with: { run: ['x'] } }] },
    { name: 'x', stepz: [] },
  ];
  for (const doc of bad) assert.equal(validate(doc), false, JSON.stringify(doc));
  const expr = { name: 'x', steps: [{ id: 'a', uses: 'train.sft', with: { model: 'm', data: 'd', epochs: '${{ params.e }}' } }] };
  assert.ok(validate(expr), 'an expression may stand for a number');
});

test('every YAML example in the docs parses', () => {
  const md = pipelineLanguageMarkdown();
  const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 4);
  for (const block of blocks) assert.doesNotThrow(() => parse(block), block);
  const example = blocks.find((b) => b.startsWith('name: demo'))!;
  const r = compileText(example);
  assert.ok(r.plan, r.formatted);
  const params = parse(blocks.find((b) => b.startsWith('params:'))!);
  assert.ok(compileText(stringify({ name: 'p', ...params, steps: [{ id: 'a', uses: 'command', with: { run: ['true'] } }] }), { set: ['checkpoint=x'] }).plan);
});
