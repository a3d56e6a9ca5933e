/**
 * The SFT loop: a flat stream of micro-batches over shuffled epochs, `accum` micro-batches
 * per AdamW step, warmup + cosine learning rate, gradient clipping. Every `save_every` steps or
 * `save_every_minutes` of wall-clock time, whichever comes first (and when asked to stop), the whole state goes into a checkpoint: weights, AdamW moments,
 * the step, the current epoch's order and the RNG that draws the next one. Resuming from it
 * replays exactly the same updates, so the final weights are bit-identical to a run never
 * interrupted.
 */
import { join } from 'node:path';
import { hashJson } from '../common/hash.ts';
import { Rng, type RngState } from '../common/rng.ts';
import { loadModel, saveModel } from '../engine/checkpoint.ts';
import { AdamW } from '../engine/optim.ts';
import { warmupCosineLr, warmupFromRatio } from '../engine/schedule.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import { initTrainingBackend, ParallelTrainer } from '../engine/parallel-train.ts';
import { loadItems } from '../data/loaders.ts';
import { UserError } from '../contract/errors.ts';
import type { JobContext } from '../contract/job.ts';
import { OPTIMIZER_FILE, resumeState, SaveSchedule, saveStepCheckpoint, withoutSaveSettings } from './checkpoint.ts';
import { encodeSft, padBatch, type Example } from './sft-data.ts';
import { startModel } from './start.ts';

/**
 * What the SFT trainer takes: a plain object (the train.sft step's `with`, checked by its schema
 * in dsl/kinds/sft.ts, which is held to exactly these fields).
 */
export interface SftOptions {
  /** Hugging Face model folder to start from, or preset:NAME for fresh weights. */
  model: string;
  /** tokenizer.json or its folder; with a preset and none given, one is trained on the data. */
  tokenizer?: string;
  /** Vocabulary size of a tokenizer trained on the data. */
  tokenizer_vocab_size: number;
  /** SFT items, JSON or JSONL. */
  data: string;
  learning_rate: number;
  epochs: number;
  batch_size: number;
  gradient_accumulation_steps: number;
  max_seq_len: number;
  /** Share of steps with linear warmup before the cosine decay. */
  warmup_ratio: number;
  weight_decay: number;
  max_grad_norm: number;
  /** Optimizer steps between checkpoints. */
  save_every: number;
  /** Minutes of wall-clock time between checkpoints (0: by count only). */
  save_every_minutes: number;
  seed: number;
}

export interface SftState {
  kind: 'train.sft';
  /** Hash of the parameters that shape the run; a checkpoint of another run is refused. */
  params_hash: string;
  /** Optimizer steps done. */
  step: number;
  total_steps: number;
  /** Micro-batches consumed in the current epoch. */
  cursor: number;
  epoch: number;
  /** The current epoch's order of example indices. */
  order: number[];
  /** The data RNG after drawing `order`. */
  rng: RngState;
}

/** The learning rate of update `step` (0-based): the schedule at step+1 of total+1, so no update has rate 0. */
export function sftLr(p: Pick<SftOptions, 'learning_rate' | 'warmup_ratio'>, step: number, total: number): number {
  return warmupCosineLr(step + 1, { peakLr: p.learning_rate, warmupSteps: warmupFromRatio(total, p.warmup_ratio), totalSteps: total + 1 });
}

export async function runSft(ctx: JobContext, p: SftOptions, now: () => number = Date.now): Promise<{ checkpoint: string }> {
  const { threads } = await initTrainingBackend();
  const hash = hashJson(withoutSaveSettings(p));
  const resumed = resumeState<SftState>(ctx.resumeFrom, hash);

  const start = resumed
    ? { ...(await loadModel(ctx.resumeFrom!)), tokenizer: Tokenizer.load(ctx.resumeFrom!), tokenizerDir: ctx.resumeFrom! }
    : await startModel({ model: p.model, tokenizer: p.tokenizer, vocabSize: p.tokenizer_vocab_size, data: p.data, seed: p.seed, workDir: ctx.outDir });
  const { model, tokenizer } = start;
  // Checkpoints carry the tokenizer; the final folder copies it from the newest one.
  let tokenizerDir = start.tokenizerDir;
  if (tokenizer.vocabSize > model.config.vocab_size) {
    throw new UserError(`the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocab_size}`, { where: 'with.tokenizer', hint: 'use the tokenizer that belongs to the model' });
  }

  const loaded = loadItems(p.data, 'sft');
  const examples: Example[] = [];
  let dropped = 0;
  for (const item of loaded.items) {
    const ex = encodeSft(tokenizer, item, p.max_seq_len);
    if (ex) examples.push(ex); else dropped++;
  }
  if (dropped) ctx.log(`${dropped} item(s) dropped: the prompt alone fills max_seq_len=${p.max_seq_len}`, 'warn');
  if (examples.length === 0) throw new UserError(`${p.data}: no item fits in max_seq_len=${p.max_seq_len}`, { where: p.data, hint: 'raise max_seq_len' });

  const perEpoch = Math.ceil(examples.length / p.batch_size);
  const total = Math.ceil((perEpoch * p.epochs) / p.gradient_accumulation_steps);
  const pad = tokenizer.batchPadId;
  const optimizer = new AdamW(model.params, { weightDecay: p.weight_decay });
  let rng: Rng;
  let s: SftState;
  if (resumed) {
    optimizer.load(join(ctx.resumeFrom!, OPTIMIZER_FILE));
    rng = Rng.fromState(resumed.rng);
    s = resumed;
    ctx.log(`resuming at step ${s.step} of ${total} from ${ctx.resumeFrom}`);
  } else {
    rng = new Rng(p.seed).fork('sft data');
    const order = rng.shuffle([...examples.keys()]);
    s = { kind: 'train.sft', params_hash: hash, step: 0, total_steps: total, cursor: 0, epoch: 0, order, rng: rng.getState() };
  }

  const nextMicroBatch = (): Example[] | null => {
    if (s.cursor >= perEpoch) {
      if (s.epoch + 1 >= p.epochs) return null;
      s.epoch += 1;
      s.cursor = 0;
      s.order = rng.shuffle([...examples.keys()]);
      s.rng = rng.getState();
    }
    const idx = s.order.slice(s.cursor * p.batch_size, (s.cursor + 1) * p.batch_size);
    s.cursor += 1;
    return idx.map((i) => examples[i]);
  };

  const schedule = new SaveSchedule(p.save_every, p.save_every_minutes, now);
  const save = async (): Promise<void> => {
    tokenizerDir = await saveStepCheckpoint(ctx, s.step, [{ dir: '', model, optimizer, tokenizerDir }], s);
    schedule.saved();
  };

  ctx.log(`SFT: ${examples.length} examples, ${p.epochs} epoch(s), ${total} steps of ${p.batch_size}×${p.gradient_accumulation_steps} sequences, ` +
    `${model.numParams()} parameters, vocabulary ${model.config.vocab_size}, ${threads} training thread(s)`);
  const trainer = await ParallelTrainer.start(model, optimizer, threads);
  try {
    while (s.step < total) {
      if (ctx.signal.aborted) {
        await save();
        throw new Error(`train.sft: stopped at step ${s.step} of ${total} (checkpoint written)`);
      }
      const batches: { ids: number[][]; mask: number[][] }[] = [];
      let tokens = 0;
      for (let i = 0; i < p.gradient_accumulation_steps; i++) {
        const mb = nextMicroBatch();
        if (!mb) break;
        const b = padBatch(mb, pad);
        tokens += b.ids.length * b.ids[0].length;
        batches.push(b);
      }
      if (batches.length === 0) break;
      const t0 = performance.now();
      const lr = sftLr(p, s.step, total);
      const r = await trainer.step(batches, { lr, maxGradNorm: p.max_grad_norm });
      const secs = (performance.now() - t0) / 1000;
      s.step += 1;
      ctx.metric({ loss: r.loss, lr, grad_norm: r.gradNorm, tokens_per_s: tokens / secs, epoch: s.epoch }, s.step);
      ctx.progress(s.step, total, `loss ${r.loss.toFixed(4)}`, 'steps');
      if (s.step < total && schedule.due(s.step)) await save();
    }
  } finally {
    await trainer.close();
  }

  const final = join(ctx.outDir, 'checkpoint');
  await saveModel(model, final, { tokenizerDir });
  optimizer.dispose();
  model.dispose();
  return { checkpoint: final };
}
