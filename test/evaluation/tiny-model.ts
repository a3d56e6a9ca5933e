/** A tiny random Qwen2 checkpoint folder (with the parity fixture's tokenizer) for the evaluation tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { saveModel } from '../../engine/checkpoint.ts';
import { tinyConfig } from '../engine/tiny.ts';

export const TOKENIZER = join(import.meta.dirname, '../fixtures/parity/tokenizer');

export async function tinyModel(seed: number, opts: { initializerRange?: number; context?: number } = {}): Promise<string> {
  await initBackend();
  const dir = join(mkdtempSync(join(tmpdir(), 'eval-tiny-')), 'tiny');
  // The engine tests' tiny shape, with the parity tokenizer's vocabulary and special ids.
  const config = tinyConfig({
    vocab_size: 1024, max_position_embeddings: opts.context ?? 2048,
    initializer_range: opts.initializerRange ?? 0.02, eos_token_id: 1023, pad_token_id: 1021,
  });
  const model = new CausalLM(config).initRandom(seed);
  await saveModel(model, dir, { tokenizerDir: TOKENIZER });
  model.dispose();
  return dir;
}
