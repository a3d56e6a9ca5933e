/** The data jobs check their `with` by the shared parsing (contract/params.ts): every problem named by its field, with a hint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../contract/errors.ts';
import { parseParams } from '../../contract/params.ts';
import { KnowledgeBaseParams } from '../../dsl/kinds/knowledge-base.ts';
import { run as knowledgeBase } from '../../jobs/data.knowledge_base.ts';
import { run as constructVerifiable } from '../../jobs/data.construct_verifiable.ts';
import { run as searchReasoning } from '../../jobs/data.search_reasoning.ts';
import { recordingContext } from './job-ctx.ts';

const cases = [
  { kind: 'data.knowledge_base', run: knowledgeBase, params: { train_size: 'many', cot_style: 'ful' }, fields: ['with.train_size', 'with.cot_style'] },
  { kind: 'data.construct_verifiable', run: constructVerifiable, params: { limit: -1 }, fields: ['with.input', 'with.limit'] },
  { kind: 'data.search_reasoning', run: searchReasoning, params: { input: 'x.json', max_depth: 'two' }, fields: ['with.max_depth'] },
];

for (const c of cases) {
  test(`${c.kind}: bad params are one user error naming every field, with the docs as hint`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'job-params-'));
    try {
      await assert.rejects(c.run(recordingContext(c.params, dir)), (err: unknown) => {
        assert.ok(err instanceof UserError, String(err));
        for (const f of c.fields) assert.match(err.message, new RegExp(`(^|; )${f.replace('.', '\\.')}: `), err.message);
        assert.equal(err.hint, `see docs/pipeline-language.md, ${c.kind}`);
        assert.match(err.where ?? '', /^with\./);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('parseParams returns the parsed value with defaults filled', () => {
  const p = parseParams(KnowledgeBaseParams, { train_size: 10 }, 'data.knowledge_base');
  assert.equal(p.train_size, 10);
  assert.equal(p.cot_style, 'full');
});
