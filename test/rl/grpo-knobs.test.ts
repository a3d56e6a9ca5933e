/**
 * The GRPO knobs named as in TRL's GRPOConfig (loss_type, epsilon / epsilon_high, beta with
 * kl_estimator, scale_rewards, num_iterations) on numbers worked out by hand, and the defaults
 * giving exactly the loss of the formula used before the knobs existed.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { grpoAdvantages } from '../../rl/advantages.ts';
import { grpoLoss, type GrpoLossInput } from '../../rl/grpo.ts';
import { aggregateTokens, clip, KL_PENALTIES, maskedMean, maximum, ppoClipLoss } from '../../rl/losses.ts';
import { GrpoParams, grpoKnobs } from '../../dsl/kinds/grpo.ts';
import { grpoShape } from '../../jobs/rl.grpo.ts';
import { hashJson } from '../../common/hash.ts';
import { withoutSaveSettings } from '../../train/checkpoint.ts';

before(async () => { await initBackend(); });

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const closeAll = (a: number[], b: number[], tol = 1e-5) => { assert.equal(a.length, b.length); a.forEach((x, i) => close(x, b[i], tol)); };
const t2 = (rows: number[][]) => tf.tensor2d(rows);
const num = (t: tf.Tensor) => t.dataSync()[0];
const LN2 = Math.log(2);

// Two responses of three tokens; the second one's last token is padding (mask 0), holding
// values that would swamp every result if it were counted (ratio e^9 with A = -1).
// The rollout policy's log-probs are 0, so each ratio is exp(logp):
//   response 0, A = +1: ratios 1.5, 0.5, 1.1
//   response 1, A = -1: ratios 0.7, 1.3, (pad)
// The reference differs by d = ref - logp: response 0: 0, ln 2, -ln 2; response 1: ln 2, 0, (pad).
const logpRows = [[Math.log(1.5), Math.log(0.5), Math.log(1.1)], [Math.log(0.7), Math.log(1.3), 9]];
const dRows = [[0, LN2, -LN2], [LN2, 0, -30]];
const batch = (): GrpoLossInput => ({
  logp: t2(logpRows),
  oldLogp: t2([[0, 0, 0], [0, 0, 0]]),
  refLogp: t2(logpRows.map((r, i) => r.map((x, j) => x + dRows[i][j]))),
  advantages: t2([[1, 1, 1], [-1, -1, 5]]),
  mask: t2([[1, 1, 1], [1, 1, 0]]),
});

// Per-token surrogate max(-A r, -A clip(r, 1 - 0.2, 1 + 0.28)) (epsilon 0.2, epsilon_high 0.28):
//   response 0 (A = +1): -min(r, clip(r)):  r 1.5 → clip 1.28 → -1.28 (upper bound taken)
//                                            r 0.5 → clip 0.8  → -0.5  (A > 0: the lower bound never binds)
//                                            r 1.1 → inside    → -1.1
//   response 1 (A = -1):  max(r, clip(r)):  r 0.7 → clip 0.8  →  0.8  (lower bound taken)
//                                            r 1.3 → clip 1.28 →  1.3  (A < 0: the upper bound never binds)
//   sums: response 0: -2.88 over 3 tokens; response 1: 2.1 over 2 tokens.
// k3 = exp(d) - d - 1: response 0: 0, 2 - ln2 - 1, 1/2 + ln2 - 1 (sum 0.5); response 1: 1 - ln2, 0 (sum 1 - ln2).
const K3_SUM = 1.5 - LN2;
const ASYM = { clip: 0.2, clipHigh: 0.28, klCoef: 0.1, kl: 'k3' as const };

test('loss_type dapo: every token of the mini-batch weighs the same', () => {
  const l = grpoLoss(batch(), { ...ASYM, lossType: 'dapo' });
  // pg = (-2.88 + 2.1) / 5 = -0.156; KL = (1.5 - ln2) / 5 = 0.1613706; loss = -0.156 + 0.1 * 0.1613706
  close(num(l.pg), -0.156);
  close(num(l.kl), K3_SUM / 5);
  close(num(l.loss), -0.156 + 0.1 * K3_SUM / 5);
  close(num(l.loss), -0.13986294);
  // The clipped term was taken on 2 of the 5 tokens: (0, 0) at the upper bound, (1, 0) at the lower.
  close(num(l.clipFrac), 2 / 5);
});

test('loss_type grpo: the mean over responses of each response\'s token mean', () => {
  const l = grpoLoss(batch(), { ...ASYM, lossType: 'grpo' });
  // pg = (-2.88 / 3 + 2.1 / 2) / 2 = (-0.96 + 1.05) / 2 = 0.045
  // KL term = (0.5 / 3 + (1 - ln2) / 2) / 2 = 0.1600465
  close(num(l.pg), 0.045);
  close(num(l.loss), 0.045 + 0.1 * (0.5 / 3 + (1 - LN2) / 2) / 2);
  close(num(l.loss), 0.06100465);
  close(num(l.kl), K3_SUM / 5, 1e-6); // reported as the token mean whatever the loss type
});

test('loss_type dr_grpo: the token sum over responses × max completion length', () => {
  const l = grpoLoss(batch(), { ...ASYM, lossType: 'dr_grpo', maxCompletionLength: 4 });
  // pg = (-2.88 + 2.1) / (2 × 4) = -0.0975; KL term = (1.5 - ln2) / 8 = 0.1008566
  close(num(l.pg), -0.0975);
  close(num(l.loss), -0.0975 + 0.1 * K3_SUM / 8);
  close(num(l.loss), -0.08741434);
  assert.throws(() => grpoLoss(batch(), { ...ASYM, lossType: 'dr_grpo' }), /max completion length/);
});

test('aggregateTokens: the three reductions of one tensor, padding ignored', () => {
  const x = t2([[1, 2, 3], [4, 6, 1000]]);
  const m = t2([[1, 1, 1], [1, 1, 0]]);
  close(num(aggregateTokens(x, m, 'dapo')), 16 / 5); // (1+2+3+4+6) / 5
  close(num(aggregateTokens(x, m, 'grpo')), (6 / 3 + 10 / 2) / 2); // 3.5
  close(num(aggregateTokens(x, m, 'dr_grpo', 10)), 16 / 20);
  // A response with no token counts as 0 in grpo's mean (its token count is taken as 1).
  close(num(aggregateTokens(x, t2([[1, 1, 1], [0, 0, 0]]), 'grpo')), (6 / 3 + 0) / 2);
});

test('asymmetric clipping: epsilon bounds the ratio from below, epsilon_high from above', () => {
  // Symmetric 0.2 (epsilon_high left out): token (0, 0) is bounded at 1.2 instead of 1.28:
  // pg dapo = (-1.2 - 0.5 - 1.1 + 0.8 + 1.3) / 5 = -0.7 / 5 = -0.14
  close(num(grpoLoss(batch(), { clip: 0.2, klCoef: 0 }).pg), -0.14);
  close(num(grpoLoss(batch(), { clip: 0.2, clipHigh: 0.28, klCoef: 0 }).pg), -0.156);
  // epsilon 0.35 lowers the lower bound to 0.65: token (1, 0) is then inside (0.7), the upper one stays 1.28:
  // pg = (-1.28 - 0.5 - 1.1 + 0.7 + 1.3) / 5 = -0.88 / 5 = -0.176; only token (0, 0) is clipped.
  const wide = grpoLoss(batch(), { clip: 0.35, clipHigh: 0.28, klCoef: 0 });
  close(num(wide.pg), -0.176);
  close(num(wide.clipFrac), 1 / 5);
  // ppoClipLoss (rl.ppo's) takes the same upper bound as an optional last argument.
  const b = batch();
  close(num(ppoClipLoss(b.logp, b.oldLogp, b.advantages, b.mask, 0.2, 0.28).loss), -0.156);
  close(num(ppoClipLoss(b.logp, b.oldLogp, b.advantages, b.mask, 0.2).loss), -0.14);
  // Gradient: zero on the clipped tokens, -A r / 5 elsewhere (r = 0.5, 1.1 with A = 1; r = 1.3 with A = -1).
  const g = tf.grad((lp: tf.Tensor) => grpoLoss({ ...b, logp: lp }, { clip: 0.2, clipHigh: 0.28, klCoef: 0 }).loss)(b.logp);
  closeAll([...g.dataSync()], [0, -0.5 / 5, -1.1 / 5, 0, 1.3 / 5, 0]);
});

test('kl_estimator k1 and k3 per token, exactly as defined, weighted by beta', () => {
  const b = batch();
  // k1 = log(pi / ref) = logp - ref = -d: response 0: 0, -ln2, ln2; response 1: -ln2, 0
  closeAll([...KL_PENALTIES.k1(b.logp, b.refLogp).dataSync()].filter((_, i) => i !== 5), [0, -LN2, LN2, -LN2, 0]);
  // k3 = exp(ref - logp) - (ref - logp) - 1 = exp(d) - d - 1
  closeAll([...KL_PENALTIES.k3(b.logp, b.refLogp).dataSync()].filter((_, i) => i !== 5), [0, 1 - LN2, LN2 - 0.5, 1 - LN2, 0]);
  // With k1 and loss_type dapo, beta 0.5: KL = (0 - ln2 + ln2 - ln2 + 0) / 5 = -ln2 / 5 (k1 can be negative)
  const k1 = grpoLoss(b, { clip: 0.2, klCoef: 0.5, kl: 'k1', lossType: 'dapo' });
  close(num(k1.kl), -LN2 / 5);
  close(num(k1.loss), -0.14 + 0.5 * (-LN2 / 5));
  // beta 0: no KL in the loss, but it is still reported.
  const none = grpoLoss(b, { clip: 0.2, klCoef: 0 });
  close(num(none.loss), -0.14);
  close(num(none.kl), K3_SUM / 5);
});

test('the defaults give exactly the loss of the formula used before the knobs existed', () => {
  const b = batch();
  // That formula: token means over the mini-batch of the clip-0.2 surrogate and of k3, klCoef 0.03.
  const old = tf.tidy(() => {
    const ratio = tf.exp(tf.sub(b.logp, b.oldLogp));
    const unclipped = tf.mul(tf.neg(b.advantages), ratio);
    const clipped = tf.mul(tf.neg(b.advantages), clip(ratio, 1 - 0.2, 1 + 0.2));
    const pg = maskedMean(maximum(unclipped, clipped), b.mask);
    const kl = maskedMean(KL_PENALTIES.k3(b.logp, b.refLogp), b.mask);
    return tf.add(pg, tf.mul(kl, 0.03));
  });
  // By hand: -0.7 / 5 + 0.03 × (1.5 - ln2) / 5 = -0.135158882
  close(num(old), -0.14 + 0.03 * K3_SUM / 5);
  const p = GrpoParams.parse({ policy: 'p', data: 'd', verifier: { type: 'rule' } });
  const k = grpoKnobs(p);
  assert.equal(p.loss_type, 'dapo');
  assert.deepEqual([k.epsilon, k.epsilon_high, k.beta, k.num_iterations, k.scale_rewards], [0.2, 0.2, 0.03, 1, 'group']);
  const now = grpoLoss(b, { clip: k.epsilon, clipHigh: k.epsilon_high, klCoef: k.beta, kl: p.kl_estimator, lossType: p.loss_type, maxCompletionLength: p.response_length });
  assert.equal(num(now.loss), num(old), 'bit for bit');
  // The options rl/grpo.ts took before (no clipHigh, no lossType) give the same.
  assert.equal(num(grpoLoss(b, { clip: 0.2, klCoef: 0.03 }).loss), num(old));
});

test('scale_rewards: group, batch and none on two groups of three', () => {
  const scores = [1, 0, 0.5, 0.1, 0.1, 1];
  const groups = [0, 0, 0, 1, 1, 1];
  // Group 0: mean 0.5, centred 0.5, -0.5, 0; unbiased std sqrt(0.5 / 2) = 0.5.
  // Group 1: mean 0.4, centred -0.3, -0.3, 0.6; unbiased std sqrt(0.54 / 2) = 0.5196152.
  const centred = [0.5, -0.5, 0, -0.3, -0.3, 0.6];
  const s1 = Math.sqrt(0.27);
  closeAll(grpoAdvantages(scores, groups, { eps: 0, scale: 'group' }), [1, -1, 0, -0.3 / s1, -0.3 / s1, 0.6 / s1]);
  closeAll(grpoAdvantages(scores, groups, { eps: 0 }), [1, -1, 0, -0.3 / s1, -0.3 / s1, 0.6 / s1]); // group is the default
  // none: centred only (Dr. GRPO).
  closeAll(grpoAdvantages(scores, groups, { scale: 'none' }), centred);
  // batch: the group-centred values over the std of all six scores: mean 0.45, squared deviations
  // .3025 .2025 .0025 .1225 .1225 .3025 sum 1.055, unbiased variance 0.211, std 0.4593474.
  const sb = Math.sqrt(0.211);
  closeAll(grpoAdvantages(scores, groups, { eps: 0, scale: 'batch' }), centred.map((c) => c / sb));
  closeAll(grpoAdvantages(scores, groups, { scale: 'batch' }), [1.0885, -1.0885, 0, -0.65310, -0.65310, 1.30620], 1e-4);
  // As the step reads them: true is group, false is none, and the names as they are.
  const knobs = (scale_rewards: unknown) => grpoKnobs(GrpoParams.parse({ policy: 'p', data: 'd', verifier: { type: 'rule' }, scale_rewards })).scale_rewards;
  assert.deepEqual([true, false, 'group', 'batch', 'none'].map(knobs), ['group', 'none', 'group', 'batch', 'none']);
  assert.equal(GrpoParams.safeParse({ policy: 'p', data: 'd', verifier: { type: 'rule' }, scale_rewards: 'std' }).success, false);
});

test('earlier names: clip_range, kl_coef and epochs_per_iteration give epsilon, beta and num_iterations', () => {
  const base = { policy: 'p', data: 'd', verifier: { type: 'rule' } };
  const old = GrpoParams.parse({ ...base, clip_range: 0.1, kl_coef: 0.05, epochs_per_iteration: 2 });
  const trl = GrpoParams.parse({ ...base, epsilon: 0.1, beta: 0.05, num_iterations: 2 });
  assert.deepEqual(old, trl, 'the same parsed step');
  assert.deepEqual(grpoKnobs(old), { epsilon: 0.1, epsilon_high: 0.1, beta: 0.05, num_iterations: 2, scale_rewards: 'group' });
  assert.equal(old.clip_range, undefined, 'the earlier name gives way to TRL\'s in the parsed step');
  assert.equal(GrpoParams.parse({ ...base, epsilon: 0.2, epsilon_high: 0.28 }).epsilon_high, 0.28);
  // Parsing the parsed step again (the job reads the compiled plan) changes nothing.
  assert.deepEqual(GrpoParams.parse(old), old);
  for (const [name, earlier, v] of [['epsilon', 'clip_range', 0.2], ['beta', 'kl_coef', 0.03], ['num_iterations', 'epochs_per_iteration', 1]] as const) {
    const r = GrpoParams.safeParse({ ...base, [name]: v, [earlier]: v });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues.map((i) => i.path), [[earlier]]);
    assert.match(r.error!.issues[0].message, new RegExp(`keep ${name} .*remove ${earlier}`));
  }
});

test('a checkpoint written before the knobs existed still resumes: the same run shape with the defaults', () => {
  // The parsed step as the schema gave it then, for { policy: p, data: d, verifier: rule, kl_coef: 0.05, clip_range: 0.1 }.
  const before = {
    policy: 'p', data: 'd', verifier: { type: 'rule' }, num_generations: 4, temperature: 0.5, top_p: 1, response_length: 1300,
    learning_rate: 5e-7, lr_scheduler_type: 'linear', warmup_ratio: 0.05, kl_coef: 0.05, kl_estimator: 'k3', clip_range: 0.1,
    iterations: 100, prompts_per_iteration: 32, epochs_per_iteration: 1, mini_batch_size: 8, max_grad_norm: 1, max_prompt_len: 1024,
    reward: { correct: 1, wrong: 0.1, malformed: 0 }, seed: 0, save_every: 10, save_every_minutes: 30,
  };
  const base = { policy: 'p', data: 'd', verifier: { type: 'rule' } };
  const then = hashJson(withoutSaveSettings(before));
  assert.equal(hashJson(grpoShape(GrpoParams.parse({ ...base, kl_coef: 0.05, clip_range: 0.1 }))), then);
  assert.equal(hashJson(grpoShape(GrpoParams.parse({ ...base, beta: 0.05, epsilon: 0.1, scale_rewards: true }))), then);
  // A knob away from its old behaviour is another run.
  assert.notEqual(hashJson(grpoShape(GrpoParams.parse({ ...base, beta: 0.05, epsilon: 0.1, epsilon_high: 0.28 }))), then);
  assert.notEqual(hashJson(grpoShape(GrpoParams.parse({ ...base, beta: 0.05, epsilon: 0.1, loss_type: 'grpo' }))), then);
  assert.notEqual(hashJson(grpoShape(GrpoParams.parse({ ...base, beta: 0.05, epsilon: 0.1, scale_rewards: 'batch' }))), then);
});
