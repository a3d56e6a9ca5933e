/**
 * The RL iteration driver shared by rl.grpo and rl.ppo. Each iteration is three separate
 * calls — rollout (rl/rollout.ts), scoring (rl/score.ts), update (the algorithm's) — on
 * prompts drawn without replacement from shuffled passes over the problems. The policy,
 * its AdamW state, the algorithm's extra models, the RNG, the prompt order and the metrics
 * so far are checkpointed every `save_every` iterations or `save_every_minutes` of wall-clock
 * time, whichever comes first (and when asked to stop); a resumed run continues exactly.
 * The reference policy is the starting checkpoint, reloaded from its folder. Rollouts are
 * sampled, and the old, reference and new log-probs computed, at the sampling temperature
 * (logits divided by temperature + 1e-7, as TRL); the learning rate follows rlLearningRate.
 * Rollouts come from the policy in-process, or from the server `rollout` names (whose weights
 * the trainer does not update: rl/rollout.ts rolloutSource warns).
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../common/fs.ts';
import { hashJson } from '../common/hash.ts';
import { Rng, type RngState } from '../common/rng.ts';
import { initBackendFor } from '../engine/backend.ts';
import { loadModel, saveModel } from '../engine/checkpoint.ts';
import type { CausalLM } from '../engine/model.ts';
import { AdamW } from '../engine/optim.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import type { VerifiableItem } from '../data/formats.ts';
import { loadItems } from '../data/loaders.ts';
import { makeVerifier, type VerifierConfig } from '../data/verifiers.ts';
import type { RewardMapping } from '../data/reward.ts';
import { UserError } from '../contract/errors.ts';
import type { JobContext } from '../contract/job.ts';
import { checkPolicyFolder } from '../train/start.ts';
import { OPTIMIZER_FILE, resumeState, SaveSchedule, saveStepCheckpoint, type SavePart } from '../train/checkpoint.ts';
import { scheduledLr, warmupFromRatio, type LrSchedulerType } from '../engine/schedule.ts';
import { buildSequences, scoringTemperature, tokenLogProbs, type Sequences } from './batch.ts';
import { promptIds, rolloutSource, rolloutVia, type Rollout, type RolloutServer } from './rollout.ts';
import { score, type Scores } from './score.ts';

/**
 * What the RL driver takes: a plain object (the shared part of the rl.grpo and rl.ppo steps'
 * `with`, dsl/kinds/rl.ts RlParams, which is held to exactly these fields).
 */
export interface RlOptions {
  policy: string;
  data: string;
  verifier: VerifierConfig;
  temperature: number;
  top_p: number;
  response_length: number;
  learning_rate: number;
  /** The learning-rate schedule over the iterations (transformers' lr_scheduler_type). */
  lr_scheduler_type: LrSchedulerType;
  /** Share of the iterations with linear warmup from 0, rounded up. */
  warmup_ratio: number;
  iterations: number;
  max_prompt_len: number;
  reward: RewardMapping;
  seed: number;
  save_every: number;
  /** Minutes of wall-clock time between checkpoints (0: by iteration count only). */
  save_every_minutes: number;
  /** A server that samples the rollouts instead of the policy in-process. */
  rollout?: RolloutServer;
}

export interface UpdateInput {
  /** This iteration's learning rate (rlLearningRate). */
  lr: number;
  /** The divisor of the logits for every log-prob: scoringTemperature(temperature). */
  temperature: number;
  policy: CausalLM;
  optimizer: AdamW;
  rollout: Rollout;
  scores: Scores;
  seq: Sequences;
  oldLogp: number[][];
  refLogp: number[][];
  rng: Rng;
}

export interface Algorithm {
  kind: string;
  promptsPerIteration: number;
  numGenerations: number;
  /** Loads the algorithm's own models from a checkpoint folder, or builds them fresh. */
  init(resumeDir: string | undefined, policy: CausalLM): Promise<void>;
  update(input: UpdateInput): Record<string, number>;
  /** Extra parts of a checkpoint (e.g. the value model). */
  parts(): SavePart[];
  dispose(): void;
}

interface RlState {
  kind: string;
  params_hash: string;
  iteration: number;
  order: number[];
  cursor: number;
  rng: RngState;
  history: Record<string, number>[];
}

export const ITERATIONS_FILE = 'iterations.jsonl';

/**
 * The learning rate of iteration `iteration` (0-based), as TRL's PPOTrainer schedules it: one
 * scheduler step per iteration (rollout batch), over `iterations` steps, with
 * ceil(iterations * warmup_ratio) warmup steps; the scheduler steps after each update, so the
 * first iteration runs at the schedule's step 0 (lr 0 with warmup).
 */
export function rlLearningRate(iteration: number, p: Pick<RlOptions, 'learning_rate' | 'lr_scheduler_type' | 'warmup_ratio' | 'iterations'>): number {
  return scheduledLr(p.lr_scheduler_type, iteration, {
    peakLr: p.learning_rate, warmupSteps: warmupFromRatio(p.iterations, p.warmup_ratio), totalSteps: p.iterations,
  });
}

/** Parameters that only say how often to checkpoint (rl.grpo and rl.ppo hash the rest as the run's shape). */
export { withoutSaveSettings } from '../train/checkpoint.ts';

export async function runRl(ctx: JobContext, p: RlOptions, algo: Algorithm, shape: unknown, now: () => number = Date.now): Promise<{ checkpoint: string; metrics: string }> {
  await initBackendFor('rl');
  checkPolicyFolder(p.policy);
  const hash = hashJson({ kind: algo.kind, shape });
  const resumed = resumeState<RlState>(ctx.resumeFrom, hash);
  const from = resumed ? ctx.resumeFrom! : p.policy;
  const { model: policy } = await loadModel(from);
  const { model: ref } = await loadModel(p.policy);
  const tok = Tokenizer.load(p.policy);
  const optimizer = new AdamW(policy.params, { weightDecay: 0 });
  if (resumed) optimizer.load(join(from, OPTIMIZER_FILE));
  await algo.init(resumed ? from : undefined, policy);

  const items: VerifiableItem[] = loadItems(p.data, 'verifiable').items;
  if (items.length === 0) throw new UserError(`${p.data}: no verifiable problems`, { where: p.data });
  const prompts = items.map((it) => promptIds(tok, it, p.max_prompt_len));
  const verifier = makeVerifier(p.verifier);
  const pad = tok.batchPadId;
  const rows = Math.min(algo.promptsPerIteration, items.length) * algo.numGenerations;
  const tokens = rows * p.response_length * (p.iterations - (resumed?.iteration ?? 0));
  const sampler = rolloutSource(p.rollout, policy, tok, (m) => ctx.log(m, 'warn'), { rows, tokens });

  const rng = resumed ? Rng.fromState(resumed.rng) : new Rng(p.seed).fork(algo.kind);
  const s: RlState = resumed ?? { kind: algo.kind, params_hash: hash, iteration: 0, order: rng.shuffle([...items.keys()]), cursor: 0, rng: rng.getState(), history: [] };
  if (resumed) ctx.log(`resuming at iteration ${s.iteration} of ${p.iterations} from ${ctx.resumeFrom}`);
  const metricsFile = join(ctx.outDir, ITERATIONS_FILE);

  const schedule = new SaveSchedule(p.save_every, p.save_every_minutes, now);
  const save = async () => {
    s.rng = rng.getState();
    await saveStepCheckpoint(ctx, s.iteration, [{ dir: '', model: policy, optimizer, tokenizerDir: p.policy }, ...algo.parts()], s);
    schedule.saved();
  };
  const nextPrompts = (): number[] => {
    const out: number[] = [];
    while (out.length < Math.min(algo.promptsPerIteration, items.length)) {
      if (s.cursor >= s.order.length) { s.order = rng.shuffle([...items.keys()]); s.cursor = 0; }
      out.push(s.order[s.cursor++]);
    }
    return out;
  };

  // The rollout thread (if any) stops with the loop, however it ends.
  let told = false;
  try {
    while (s.iteration < p.iterations) {
      if (ctx.signal.aborted) {
        await save();
        throw new Error(`${algo.kind}: stopped at iteration ${s.iteration} of ${p.iterations} (checkpoint written)`);
      }
      const t0 = performance.now();
      const chosen = nextPrompts();
      // Sampling and every log-prob at temperature + 1e-7, as TRL (its GenerationConfig and logits division).
      const temperature = scoringTemperature(p.temperature);
      const lr = rlLearningRate(s.iteration, p);
      const ro = await rolloutVia(sampler, tok, chosen.map((i) => prompts[i]), {
        numGenerations: algo.numGenerations, temperature, topP: p.top_p, responseLength: p.response_length, seed: rng.nextU32(),
      });
      const t1 = performance.now();
      if (!p.rollout && !told) ctx.log(`rollouts: sampled by ${sampler.where}`);
      told = true;
      const scores = await score(ro.texts, chosen.map((i) => items[i]), ro.group, verifier, p.reward);
      const seq = buildSequences(ro.prompts, ro.responses, pad);
      const oldLogp = tokenLogProbs(policy, seq, temperature);
      const refLogp = tokenLogProbs(ref, seq, temperature);
      const stats = algo.update({ lr, temperature, policy, optimizer, rollout: ro, scores, seq, oldLogp, refLogp, rng });
      const t2 = performance.now();
      s.iteration += 1;
      const n = ro.texts.length;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const values: Record<string, number> = {
        iteration: s.iteration,
        reward_mean: mean(scores.rewards),
        accuracy: mean(scores.correct.map(Number)),
        format_rate: mean(scores.formatted.map(Number)),
        lr,
        response_length: mean(ro.responses.map((r) => r.length)),
        finished_rate: mean(ro.finished.map(Number)),
        ...stats,
        rollout_s: (t1 - t0) / 1000,
        update_s: (t2 - t1) / 1000,
        responses: n,
      };
      s.history.push(values);
      writeFileAtomic(metricsFile, s.history.map((h) => JSON.stringify(h)).join('\n') + '\n');
      ctx.metric(values, s.iteration);
      ctx.log(`iteration ${s.iteration} sample (reward ${scores.rewards[0]}): ${JSON.stringify(ro.texts[0].slice(0, 400))}`);
      ctx.progress(s.iteration, p.iterations, `reward ${values.reward_mean.toFixed(3)}, accuracy ${values.accuracy.toFixed(2)}, format ${values.format_rate.toFixed(2)}`, 'iterations');
      if (s.iteration < p.iterations && schedule.due(s.iteration)) await save();
    }
  } finally {
    await sampler.close?.();
  }

  const final = join(ctx.outDir, 'checkpoint');
  await saveModel(policy, final, { tokenizerDir: p.policy });
  verifier.close?.();
  optimizer.dispose();
  algo.dispose();
  policy.dispose();
  ref.dispose();
  return { checkpoint: final, metrics: metricsFile };
}
