/**
 * Training checkpoints: a Hugging Face model folder (config.json, model.safetensors,
 * generation_config.json, tokenizer files) plus the trainer's own state:
 *   optimizer.safetensors   AdamW step and moments
 *   trainer_state.json      step, RNG state, data cursor, anything the loop needs to continue
 *   (extra model folders, e.g. a PPO value model, as sub-folders)
 * The whole folder is written under a temporary name and renamed into place, so a
 * checkpoint either exists completely or not at all; trainer_state.json is written last.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import { replaceFolder, writeModelFiles } from '../engine/checkpoint.ts';
import { UserError } from '../contract/errors.ts';
import type { JobContext } from '../contract/job.ts';
import type { CausalLM } from '../engine/model.ts';
import type { AdamW } from '../engine/optim.ts';

export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface SavePart {
  /** Sub-folder name ('' for the folder itself). */
  dir: string;
  model: CausalLM;
  optimizer?: AdamW;
  tokenizerDir?: string;
}

/** Writes a checkpoint folder atomically; `state` goes to trainer_state.json. */
export async function saveCheckpoint(dir: string, parts: SavePart[], state: object): Promise<void> {
  await replaceFolder(dir, 'partial', (tmp) => {
    for (const part of parts) {
      const where = part.dir ? join(tmp, part.dir) : tmp;
      mkdirSync(where, { recursive: true });
      writeModelFiles(part.model, where, { tokenizerDir: part.tokenizerDir });
      if (part.optimizer) part.optimizer.save(join(where, OPTIMIZER_FILE));
    }
    writeJsonAtomic(join(tmp, STATE_FILE), state);
  });
}

/** The trainer state of a checkpoint folder; the error says what is wrong and what to do. */
export function readTrainerState<T>(dir: string): T {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) {
    throw new Error(`${dir}: not a training checkpoint (no ${STATE_FILE}); remove it or start the step afresh`);
  }
  return readJsonFile<T>(path);
}

/** The state to resume from (none without `resumeFrom`); a checkpoint of a run with other parameters is refused. */
export function resumeState<T extends { params_hash: string }>(resumeFrom: string | undefined, paramsHash: string): T | undefined {
  if (!resumeFrom) return undefined;
  const state = readTrainerState<T>(resumeFrom);
  if (state.params_hash !== paramsHash) {
    throw new UserError(`${resumeFrom}: checkpoint of a run with other parameters`, { hint: 'delete the step folder to start afresh' });
  }
  return state;
}

/** Complete checkpoints kept in a step's checkpoints/ folder. */
const KEEP = 2;

/**
 * Writes the checkpoint of `step` to OUT/checkpoints/step-N, keeps only the newest ones and
 * reports it to the supervisor; returns its folder.
 */
export async function saveStepCheckpoint(ctx: Pick<JobContext, 'outDir' | 'checkpoint'>, step: number, parts: SavePart[], state: object): Promise<string> {
  const root = join(ctx.outDir, 'checkpoints');
  const dir = join(root, checkpointName(step));
  await saveCheckpoint(dir, parts, state);
  pruneCheckpoints(root, KEEP);
  ctx.checkpoint(dir, step);
  return dir;
}

/**
 * When a trainer checkpoints: every `every` steps (iterations for RL, optimizer steps for
 * SFT) or once `everyMinutes` of wall-clock time have passed since the last save (or the
 * start), whichever comes first; `everyMinutes` 0 turns the clock off. The clock is
 * injectable for tests.
 */
export class SaveSchedule {
  private readonly everyMs: number;
  private last: number;
  constructor(private readonly every: number, everyMinutes: number, private readonly now: () => number = Date.now) {
    this.everyMs = everyMinutes > 0 ? everyMinutes * 60_000 : Infinity;
    this.last = now();
  }

  /** Whether a checkpoint is due now that `step` steps are done. */
  due(step: number): boolean {
    return step % this.every === 0 || this.now() - this.last >= this.everyMs;
  }

  /** Call when a checkpoint was written: the clock starts again. */
  saved(): void {
    this.last = this.now();
  }
}

/** Parameters that only say how often to checkpoint: not part of a run's shape (a checkpoint stays valid when they change). */
export function withoutSaveSettings<T extends { save_every: number; save_every_minutes: number }>(p: T): Omit<T, 'save_every' | 'save_every_minutes'> {
  const { save_every: _e, save_every_minutes: _m, ...rest } = p;
  return rest;
}

/** Checkpoint folder name of a step: step-000020 (sorts by name). */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Removes all but the newest `keep` complete checkpoints (and any leftover partial folders) in `root`. */
export function pruneCheckpoints(root: string, keep: number): void {
  if (!existsSync(root)) return;
  const names = readdirSync(root);
  for (const n of names) if (n.startsWith('.') && n.includes('.partial-')) rmSync(join(root, n), { recursive: true, force: true });
  const done = names.filter((n) => /^step-\d+$/.test(n)).sort();
  for (const n of done.slice(0, Math.max(0, done.length - keep))) rmSync(join(root, n), { recursive: true, force: true });
}
