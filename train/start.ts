/**
 * Where SFT starts: a Hugging Face model folder (its own tokenizer, or the one given), or
 * `preset:NAME` — fresh seeded weights of configs/NAME.json with a byte-level BPE tokenizer
 * trained on the SFT data (the vocabulary size of the model follows the tokenizer).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readJsonFile } from '../common/fs.ts';
import { presetFile, presetName } from '../common/presets.ts';
import { parseConfig } from '../engine/config.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { CausalLM } from '../engine/model.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import { readCorpusFile } from '../data/tokenizer-corpus.ts';
import { saveTrainedTokenizer, trainTokenizer } from '../engine/tokenizer-train.ts';
import { UserError } from '../contract/errors.ts';

export interface Start {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Folder holding the tokenizer files copied into every checkpoint. */
  tokenizerDir: string;
}

/** The folder of a tokenizer given as tokenizer.json or as its folder. */
function tokenizerFolder(path: string): string {
  return path.endsWith('.json') ? dirname(path) : path;
}

export async function startModel(opts: {
  model: string; tokenizer?: string; vocabSize: number; data: string; seed: number; workDir: string;
}): Promise<Start> {
  const preset = presetName(opts.model);
  if (!preset) {
    if (!existsSync(join(opts.model, 'config.json'))) {
      throw new UserError(`${opts.model}: not a model folder (no config.json)`, { where: 'with.model', hint: 'give a Hugging Face model folder, or preset:tiny / preset:small' });
    }
    const tokenizerDir = opts.tokenizer ? tokenizerFolder(opts.tokenizer) : opts.model;
    const { model } = await loadModel(opts.model);
    return { model, tokenizer: Tokenizer.load(tokenizerDir), tokenizerDir };
  }
  const cfgPath = presetFile(preset);
  if (!existsSync(cfgPath)) {
    throw new UserError(`with.model: unknown preset "${preset}" (no configs/${preset}.json)`, { where: 'with.model', hint: 'use preset:tiny or preset:small, or a model folder' });
  }
  let tokenizerDir: string;
  if (opts.tokenizer) tokenizerDir = tokenizerFolder(opts.tokenizer);
  else {
    tokenizerDir = join(opts.workDir, 'tokenizer');
    const trained = trainTokenizer(readCorpusFile(opts.data), { vocabSize: opts.vocabSize });
    saveTrainedTokenizer(trained, tokenizerDir);
  }
  const tokenizer = Tokenizer.load(tokenizerDir);
  const raw = readJsonFile<Record<string, unknown>>(cfgPath);
  const config = parseConfig({
    ...raw,
    vocab_size: tokenizer.vocabSize,
    ...(tokenizer.eosTokenId !== null ? { eos_token_id: tokenizer.eosTokenId } : {}),
    ...(tokenizer.padTokenId !== null ? { pad_token_id: tokenizer.padTokenId } : {}),
    ...(tokenizer.bosTokenId !== null ? { bos_token_id: tokenizer.bosTokenId } : {}),
  }, cfgPath);
  return { model: new CausalLM(config).initRandom(opts.seed), tokenizer, tokenizerDir };
}
