/**
 * Hugging Face model folders: config.json + model.safetensors (or shards listed in
 * model.safetensors.index.json) + generation_config.json + tokenizer files.
 * Loading checks every tensor's name, shape and dtype against config.json; saving
 * writes a complete folder next to the target and renames it into place, so a reader
 * never sees half a checkpoint and a failed save leaves the previous one intact.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readJsonFile, writeJsonAtomic, writeFileAtomic } from '../common/fs.ts';
import { loadConfig, toHfConfig, weightShapes, type ModelConfig } from './config.ts';
import { CausalLM } from './model.ts';
import { openSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors.ts';

/** Tensors some checkpoints carry that the model does not need. */
const IGNORABLE = [/\.rotary_emb\.inv_freq$/];

/** Tokenizer files copied along with a model when present. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

/** Which file holds each tensor: model.safetensors, or the shards of model.safetensors.index.json. */
function weightFiles(dir: string): Map<string, string> {
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  const where = new Map<string, string>();
  if (existsSync(index)) {
    const idx = readJsonFile<{ weight_map?: Record<string, string> }>(index);
    if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new Error(`${index}: missing "weight_map" object`);
    for (const [name, file] of Object.entries(idx.weight_map)) where.set(name, join(dir, file));
    return where;
  }
  if (!existsSync(single)) {
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json (a Hugging Face model folder needs one; .bin weights are not supported)`);
  }
  const f = openSafetensors(single);
  for (const name of f.tensors.keys()) where.set(name, single);
  f.close();
  return where;
}

/** Loads a model folder; errors say which tensor is wrong and what was expected. */
export async function loadModel(dir: string): Promise<{ model: CausalLM; config: ModelConfig }> {
  const config = loadConfig(join(dir, 'config.json'));
  let model: CausalLM | undefined;
  try {
    readWeights(dir, config, weightShapes(config), (name) => name === 'lm_head.weight' && config.tie_word_embeddings, () => {
      model = new CausalLM(config);
      return (name, shape, data) => model!.setWeights(new Map([[name, { shape, data }]]));
    });
  } catch (err) {
    model?.dispose();
    throw err;
  }
  return { model: model!, config };
}

/**
 * Reads the tensors `expected` (name → shape, files' layout) of a model folder: first checks
 * that every tensor of the files is expected (or `unused(name)`, or ignorable) and that every
 * expected one is there with its shape, then reads them one at a time (only one is ever held on
 * the host) into the placer that `start` returns.
 */
export function readWeights(dir: string, config: ModelConfig, expected: Map<string, number[]>, unused: (name: string) => boolean,
  start: () => (name: string, shape: number[], data: Float32Array) => void): void {
  const where = weightFiles(dir);
  const files = new Map<string, SafetensorsFile>();
  const open = (path: string): SafetensorsFile => {
    let f = files.get(path);
    if (!f) {
      if (!existsSync(path)) throw new Error(`${path}: shard listed in model.safetensors.index.json is missing`);
      f = openSafetensors(path);
      files.set(path, f);
    }
    return f;
  };
  const cfgHint = `(config.json: hidden_size=${config.hidden_size}, intermediate_size=${config.intermediate_size}, ` +
    `num_attention_heads=${config.num_attention_heads}, num_key_value_heads=${config.num_key_value_heads}, ` +
    `head_dim=${config.head_dim}, vocab_size=${config.vocab_size}, num_hidden_layers=${config.num_hidden_layers})`;
  try {
    for (const name of where.keys()) {
      if (expected.has(name) || IGNORABLE.some((re) => re.test(name)) || unused(name)) continue;
      throw new Error(`${where.get(name)}: unexpected tensor "${name}": the checkpoint does not match config.json ${cfgHint}`);
    }
    // Check every tensor's presence and shape before reading any data.
    for (const [name, shape] of expected) {
      const path = where.get(name);
      if (!path) throw new Error(`${dir}: missing tensor "${name}" (expected shape [${shape}]) ${cfgHint}`);
      const e = open(path).tensors.get(name);
      if (!e) throw new Error(`${path}: missing tensor "${name}" (the index lists it in this shard)`);
      if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${path}: tensor "${name}" has shape [${e.shape}], expected [${shape}] ${cfgHint}`);
      }
    }
    // Then read and place them one at a time, so only one tensor is ever held on the host.
    const place = start();
    for (const [name, shape] of expected) place(name, shape, open(where.get(name)!).read(name));
  } finally {
    for (const f of files.values()) f.close();
  }
}

export interface SaveOptions {
  /** Folder whose tokenizer.json / tokenizer_config.json (and friends) are copied. */
  tokenizerDir?: string;
  /** generation_config.json content; by default the config's bos/eos ids. */
  generationConfig?: object;
  /** More files to write: relative name → text. */
  extraFiles?: Record<string, string>;
  /** Weight dtype in model.safetensors (default F32). */
  dtype?: 'F32' | 'BF16';
}

/**
 * Fills a new folder beside `dir` (named `.NAME.TAG-PID-RANDOM`) and swaps it into place: an
 * existing `dir` is moved aside first and removed after, so `dir` is only ever the old or the new
 * complete folder. If `fill` throws, the new folder is removed and the old one is left as it was.
 */
export async function replaceFolder(dir: string, tag: string, fill: (tmp: string) => Promise<void> | void): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp);
  try {
    await fill(tmp);
    const old = existsSync(dir) ? `${tmp}.old` : undefined;
    if (old) renameSync(dir, old);
    renameSync(tmp, dir);
    if (old) rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Writes the files of a Hugging Face model folder into the existing folder `dir`. */
export function writeModelFiles(model: CausalLM, dir: string, opts: SaveOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const c = model.config;
  writeJsonAtomic(join(dir, 'config.json'), toHfConfig(c, dtype === 'F32' ? 'float32' : 'bfloat16'));
  // Each weight is read from the model only when its turn to be written comes.
  const tensors = [...model.weightShapes()].map(([name, shape]) => ({ name, shape, data: () => model.getWeight(name).data }));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype });
  const gen = opts.generationConfig ?? {
    ...(c.bos_token_id !== undefined ? { bos_token_id: c.bos_token_id } : {}),
    ...(c.eos_token_id !== undefined ? { eos_token_id: c.eos_token_id } : {}),
    ...(c.pad_token_id !== undefined ? { pad_token_id: c.pad_token_id } : {}),
  };
  writeJsonAtomic(join(dir, 'generation_config.json'), gen);
  if (opts.tokenizerDir) {
    let copied = 0;
    for (const f of TOKENIZER_FILES) {
      const src = join(opts.tokenizerDir, f);
      if (existsSync(src)) { copyFileSync(src, join(dir, f)); copied++; }
    }
    if (!existsSync(join(opts.tokenizerDir, 'tokenizer.json'))) {
      throw new Error(`${opts.tokenizerDir}: no tokenizer.json to copy into the model folder (copied ${copied} other files)`);
    }
  }
  for (const [name, text] of Object.entries(opts.extraFiles ?? {})) {
    if (name.includes('..') || name.startsWith('/')) throw new Error(`saveModel: extra file name "${name}" must stay inside the folder`);
    writeFileAtomic(join(dir, name), text);
  }
}

/** Writes a complete Hugging Face model folder at `dir`, replacing any previous one atomically. */
export async function saveModel(model: CausalLM, dir: string, opts: SaveOptions = {}): Promise<void> {
  await replaceFolder(dir, 'tmp', (tmp) => writeModelFiles(model, tmp, opts));
}
