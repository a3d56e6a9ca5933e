/** The rule for which checkpoint a retried job resumes from (runtime/checkpoints.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCheckpoints, isValidCheckpoint, newestCheckpoint, stepNumber } from '../../runtime/checkpoints.ts';
import { tempDir } from '../fixtures/jobs/util.ts';

function ckptFolder(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

test('only complete checkpoints count', () => {
  const step = tempDir('da-ckpt-');
  const good = ckptFolder(join(step, 'out', 'checkpoint-100'), { 'model.safetensors': 'w', 'sub/trainer_state.json': '{}' });
  const empty = ckptFolder(join(step, 'out', 'checkpoint-300'), {});
  const onlyEmptyFiles = ckptFolder(join(step, 'out', 'checkpoint-400'), { 'a.bin': '' });
  const halfWritten = ckptFolder(join(step, 'out', 'checkpoint-500'), { 'model.safetensors': 'w', 'optimizer.pt.tmp': 'x' });
  const tempFolder = ckptFolder(join(step, 'out', '.checkpoint-600'), { 'model.safetensors': 'w' });
  const inTempParent = ckptFolder(join(step, '.staging', 'checkpoint-700'), { 'model.safetensors': 'w' });
  writeFileSync(join(step, 'out', 'state-800.json.partial'), '{}');
  writeFileSync(join(step, 'out', 'state-900.json'), '');
  writeFileSync(join(step, 'out', 'state-200.json'), '{"ok":1}');

  assert.ok(isValidCheckpoint(good, step));
  assert.ok(isValidCheckpoint(join(step, 'out', 'state-200.json'), step));
  for (const bad of [empty, onlyEmptyFiles, halfWritten, tempFolder, join(step, 'out', 'state-800.json.partial'), join(step, 'out', 'state-900.json'), join(step, 'nope')]) {
    assert.equal(isValidCheckpoint(bad, step), false, bad);
  }
  assert.equal(isValidCheckpoint(inTempParent, step), false, 'a checkpoint below a temp folder');

  const found = findCheckpoints(step, 'out/*');
  assert.deepEqual(found.map((c) => [c.path, c.step]), [[good, 100], [join(step, 'out', 'state-200.json'), 200]]);
  assert.equal(newestCheckpoint(step, 'out/*')!.path, join(step, 'out', 'state-200.json'));
  assert.equal(newestCheckpoint(step, 'out/checkpoint-*')!.path, good);
  assert.equal(newestCheckpoint(step, 'nothing-*'), undefined);
});

test('newest by the step number in the name; by modification time when a name has none', () => {
  const step = tempDir('da-ckpt-');
  const c9 = ckptFolder(join(step, 'ckpt', 'step-9'), { 's.json': '9' });
  const c10 = ckptFolder(join(step, 'ckpt', 'step-10'), { 's.json': '10' });
  utimesSync(c9, new Date(), new Date(Date.now() + 60_000)); // newer on disk, but an earlier step
  assert.equal(newestCheckpoint(step, 'ckpt/*')!.path, c10, 'step 10 beats step 9 (numeric, not lexical or by time)');
  assert.equal(stepNumber(join(step, 'ckpt', 'run3', 'epoch-0042'), step), 42);

  const other = tempDir('da-ckpt-');
  const a = ckptFolder(join(other, 'latest'), { 's.json': 'a' });
  const b = ckptFolder(join(other, 'best'), { 's.json': 'b' });
  utimesSync(a, new Date(), new Date(Date.now() - 60_000));
  assert.equal(newestCheckpoint(other, '*')!.path, b);
  utimesSync(b, new Date(), new Date(Date.now() - 120_000));
  assert.equal(newestCheckpoint(other, '*')!.path, a);
});

test('resumeFrom competes with what is on disk; a vanished or incomplete one is ignored', () => {
  const step = tempDir('da-ckpt-');
  const c5 = ckptFolder(join(step, 'ckpt', 'step-5'), { 's.json': '5' });
  const elsewhere = ckptFolder(join(tempDir('da-ckpt-'), 'step-20'), { 's.json': '20' });
  assert.equal(newestCheckpoint(step, 'ckpt/*', elsewhere)!.path, elsewhere);
  const c30 = ckptFolder(join(step, 'ckpt', 'step-30'), { 's.json': '30' });
  assert.equal(newestCheckpoint(step, 'ckpt/*', elsewhere)!.path, c30);
  assert.equal(newestCheckpoint(step, 'ckpt/*', join(step, 'gone'))!.path, c30);
  assert.equal(newestCheckpoint(step, undefined, c5)!.path, c5, 'without a glob, resumeFrom alone');
  assert.equal(newestCheckpoint(step, undefined, join(step, 'ckpt', 'step-99')), undefined);
});
