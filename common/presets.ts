/**
 * Model presets: `preset:NAME` in a step's parameters stands for configs/NAME.json (the
 * trainers build fresh weights of that shape; the step cache hashes the file as an input).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PRESETS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'configs');

/** NAME of a `preset:NAME` value, else undefined. */
export function presetName(value: string): string | undefined {
  return /^preset:(.+)$/.exec(value)?.[1];
}

/** The file a preset's shape is read from. */
export function presetFile(name: string, dir: string = PRESETS_DIR): string {
  return join(dir, `${name}.json`);
}
