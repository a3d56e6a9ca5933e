// `doctor-agent kb generate` and `doctor-agent kb stats` through the real command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateKb, serializeKb } from '../../data/kb/generate.ts';
import { formatStats, kbStats } from '../../cli/commands/kb.ts';

const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);

test('kb generate writes the four files, equal to the generator for the same options', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'kb-cli-')), 'out');
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin/doctor-agent.js'), 'kb', 'generate', '--out', out,
    '--seed', '11', '--train-size', '150', '--eval-size', '20', '--cot', 'brief'], { cwd: ROOT });
  assert.match(stdout, /150 training items/);
  const expected = serializeKb(generateKb({ seed: 11, trainSize: 150, evalSize: 20, cotStyle: 'brief' }));
  for (const k of ['mcq', 'verifiable', 'sft', 'eval'] as const) assert.equal(readFileSync(join(out, `${k}.json`), 'utf8'), expected[k]);

  await assert.rejects(
    run(process.execPath, [join(ROOT, 'bin/doctor-agent.js'), 'kb', 'generate', '--out', out, '--cot', 'long'], { cwd: ROOT }),
    (err: { stderr: string; code: number }) => err.code !== 0 && /Allowed choices are full, brief/.test(err.stderr),
  );
});

test('kb stats counts conditions, specialties and held-out combinations', () => {
  const s = kbStats();
  assert.ok(s.conditions >= 150);
  assert.equal(s.specialties.reduce((n, x) => n + x.conditions, 0), s.conditions);
  for (const x of s.specialties) assert.ok(x.heldOutCombos > 0 && x.trainCombos > x.heldOutCombos, x.name);
  assert.ok(s.vignetteTemplates.heldOut >= 1 && s.questionTemplates.heldOut >= 4);
  assert.match(formatStats(s), new RegExp(`^${s.conditions} conditions in 14 specialties`));
});
