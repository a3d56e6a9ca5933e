/**
 * Saves every parity fixture model again through our saveModel (F32 and BF16) into OUT_DIR and
 * records our own logits for the reference input ids, so check_saved.py can load the folders with
 * transformers and compare. Usage: node --import tsx scripts/parity/save_engine_copies.ts OUT_DIR
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { loadModel, saveModel } from '../../engine/checkpoint.ts';
import { readJsonFile, writeJsonAtomic } from '../../common/fs.ts';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/parity/', import.meta.url));
const out = process.argv[2];
if (!out) throw new Error('usage: save_engine_copies.ts OUT_DIR');

await initBackend();
const ref = readJsonFile<{ models: Record<string, { input_ids: number[][] }> }>(FIXTURE + 'reference.json').models;
const logits: Record<string, { input_ids: number[][]; logits: number[] }> = {};
for (const [name, r] of Object.entries(ref)) {
  for (const dtype of ['F32', 'BF16'] as const) {
    const { model } = await loadModel(FIXTURE + name);
    const dir = join(out, `${name}-saved-${dtype.toLowerCase()}`);
    await saveModel(model, dir, { tokenizerDir: FIXTURE + name, dtype });
    model.dispose();
    const again = await loadModel(dir);
    const ids = r.input_ids;
    const data = tf.tidy(() => again.model.forward(tf.tensor2d(ids, [ids.length, ids[0].length], 'int32')).dataSync());
    again.model.dispose();
    logits[dir] = { input_ids: ids, logits: Array.from(data) };
    console.log(`saved ${dir}`);
  }
}
writeJsonAtomic(join(out, 'engine_logits.json'), logits, false);
