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

/**
 * The tokenizer folder a run starts from: the one given, else the model folder's own, else (a
 * preset) one trained on the SFT data into `workDir/tokenizer`.
 */
export function startTokenizer(opts: { model: string; tokenizer?: string; vocabSize: number; data: string; workDir: string }): string {
  if (opts.tokenizer) return tokenizerFolder(opts.tokenizer);
  if (!presetName(opts.model)) return opts.model;
  const dir = join(opts.workDir, 'tokenizer');
  saveTrainedTokenizer(trainTokenizer(readCorpusFile(opts.data), { vocabSize: opts.vocabSize }), dir);
  return dir;
}

/** The model folder or preset given, checked: a folder must hold config.json, a preset its configs/NAME.json. */
export function checkStartModel(model: string): void {
  const preset = presetName(model);
  if (!preset) {
    if (!existsSync(join(model, 'config.json'))) {
      throw new UserError(`${model}: not a model folder (no config.json)`, { where: 'with.model', hint: 'give a Hugging Face model folder, or preset:tiny / preset:small' });
    }
  } else if (!existsSync(presetFile(preset))) {
    throw new UserError(`with.model: unknown preset "${preset}" (no configs/${preset}.json)`, { where: 'with.model', hint: 'use preset:tiny or preset:small, or a model folder' });
  }
}

/** An RL step's policy, checked: a checkpoint folder holding config.json. */
export function checkPolicyFolder(policy: string): void {
  if (!existsSync(join(policy, 'config.json'))) {
    throw new UserError(`${policy}: not a model folder (no config.json)`, { where: 'with.policy', hint: 'give a checkpoint folder, e.g. ${{ steps.sft.outputs.checkpoint }}' });
  }
}

export async function startModel(opts: {
  model: string; tokenizer?: string; vocabSize: number; data: string; seed: number; workDir: string;
}): Promise<Start> {
  checkStartModel(opts.model);
  const tokenizerDir = startTokenizer(opts);
  const preset = presetName(opts.model);
  if (!preset) {
    const { model } = await loadModel(opts.model);
    return { model, tokenizer: Tokenizer.load(tokenizerDir), tokenizerDir };
  }
  const cfgPath = presetFile(preset);
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
