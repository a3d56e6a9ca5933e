/** Advantage estimators and losses (rl/advantages.ts, rl/losses.ts) on numbers worked out by hand. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { ADVANTAGE_ESTIMATORS, gaeAdvantages, grpoAdvantages, whiten } from '../../rl/advantages.ts';
import { clippedValueLoss, KL_PENALTIES, maskedMean, POLICY_LOSSES, ppoClipLoss } from '../../rl/losses.ts';

before(async () => { await initBackend(); });

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const closeAll = (a: number[], b: number[], tol = 1e-5) => { assert.equal(a.length, b.length); a.forEach((x, i) => close(x, b[i], tol)); };
const t2 = (rows: number[][]) => tf.tensor2d(rows);

test('registries name each function', () => {
  assert.equal(ADVANTAGE_ESTIMATORS.grpo, grpoAdvantages);
  assert.equal(ADVANTAGE_ESTIMATORS.gae, gaeAdvantages);
  assert.equal(POLICY_LOSSES.ppo_clip, ppoClipLoss);
  assert.deepEqual(Object.keys(KL_PENALTIES).sort(), ['k1', 'k2', 'k3']);
});

test('grpo: group mean and unbiased std, groups independent', () => {
  // Group 0: rewards 1, 0.1, 0, 0.1 → mean 0.3; deviations .7 -.2 -.3 -.2; sum sq .66; var .22; std .469042
  // Group 1: 1, 1 → mean 1, std 0 → advantages 0.
  const adv = grpoAdvantages([1, 0.1, 0, 0.1, 1, 1], [0, 0, 0, 0, 1, 1], { eps: 0 });
  const std = Math.sqrt(0.22);
  closeAll(adv.slice(0, 4), [0.7 / std, -0.2 / std, -0.3 / std, -0.2 / std]);
  assert.deepEqual(adv.slice(4).map((x) => (Number.isNaN(x) ? 'nan' : x)), ['nan', 'nan']); // 0/0 with eps 0
  const safe = grpoAdvantages([1, 1], [0, 0]);
  assert.deepEqual(safe, [0, 0]);
  closeAll(grpoAdvantages([2, 0], [5, 5], { normalizeStd: false }), [1, -1]);
  // Interleaved group ids are grouped by id, not position: [3, 1] and [0, 4]
  // std of {3,1} = sqrt(2), of {0,4} = sqrt(8)
  closeAll(grpoAdvantages([3, 0, 1, 4], [0, 1, 0, 1], { eps: 0 }), [1 / Math.SQRT2, -2 / Math.sqrt(8), -1 / Math.SQRT2, 2 / Math.sqrt(8)]);
});

test('gae: gamma 1, lambda 0.95 on three tokens', () => {
  // rewards r = [0, 0, 1], values V = [0.5, 0.2, 0.4], V_3 = 0.
  // delta_2 = 1 + 0 - 0.4 = 0.6;      A_2 = 0.6
  // delta_1 = 0 + 0.4 - 0.2 = 0.2;    A_1 = 0.2 + 0.95 * 0.6 = 0.77
  // delta_0 = 0 + 0.2 - 0.5 = -0.3;   A_0 = -0.3 + 0.95 * 0.77 = 0.4315
  const { advantages, returns } = gaeAdvantages([0, 0, 1], [0.5, 0.2, 0.4], 1, 0.95);
  closeAll(advantages, [0.4315, 0.77, 0.6]);
  closeAll(returns, [0.9315, 0.97, 1.0]);
  // lambda 1, gamma 1: A_t = (sum of rewards from t) - V_t (Monte Carlo)
  closeAll(gaeAdvantages([0.1, -0.2, 1], [0.3, 0.3, 0.3], 1, 1).advantages, [0.6, 0.5, 0.7]);
  // gamma 0.5, lambda 0: one-step TD: delta_t only
  closeAll(gaeAdvantages([1, 2], [1, 4], 0.5, 0).advantages, [1 + 0.5 * 4 - 1, 2 - 4]);
});

test('whiten: mean 0, unbiased std 1 over all rows', () => {
  const w = whiten([[1, 2], [3]]);
  // mean 2, var (1+0+1)/2 = 1
  closeAll(w.flat(), [-1, 0, 1], 1e-6);
});

test('ppo clipped surrogate and clip fraction', () => {
  // tokens: ratio e^0.5=1.6487 with A=+1 → min(1.6487, 1.2) = 1.2 (clipped)
  //         ratio e^-0.5=0.6065 with A=+1 → min(0.6065, 0.8) = 0.6065
  //         ratio e^0.5 with A=-2 → min(-3.2974, -2.4) = -3.2974
  //         masked token ignored
  const logp = t2([[0.5, -0.5], [0.5, 9]]);
  const old = t2([[0, 0], [0, 0]]);
  const adv = t2([[1, 1], [-2, 5]]);
  const mask = t2([[1, 1], [1, 0]]);
  const { loss, clipFrac } = ppoClipLoss(logp, old, adv, mask, 0.2);
  close(loss.dataSync()[0], -(1.2 + Math.exp(-0.5) - 2 * Math.exp(0.5)) / 3);
  close(clipFrac.dataSync()[0], 1 / 3);
});

test('ppo surrogate gradient: zero where clipped, -A/n times ratio elsewhere', () => {
  const old = t2([[0, 0, 0]]);
  const adv = t2([[1, 1, -1]]);
  const mask = t2([[1, 1, 1]]);
  const g = tf.grad((lp: tf.Tensor) => ppoClipLoss(lp, old, adv, mask, 0.2).loss)(t2([[0.5, 0.1, 0.1]]));
  // token 0: ratio 1.65 > 1.2 with A>0 → clipped, gradient 0
  // token 1: ratio e^0.1 inside → d/dlp (-A r / 3) = -e^0.1 / 3
  // token 2: A<0, ratio 1.105 inside → +e^0.1 / 3
  closeAll([...g.dataSync()], [0, -Math.exp(0.1) / 3, Math.exp(0.1) / 3]);
});

test('kl penalties k1, k2, k3', () => {
  const lp = t2([[-1, -2]]);
  const ref = t2([[-1.5, -1]]);
  // d = lp - ref = [0.5, -1]
  closeAll([...KL_PENALTIES.k1(lp, ref).dataSync()], [0.5, -1]);
  closeAll([...KL_PENALTIES.k2(lp, ref).dataSync()], [0.125, 0.5]);
  // k3 = exp(ref - lp) - (ref - lp) - 1 with ref - lp = [-0.5, 1]
  closeAll([...KL_PENALTIES.k3(lp, ref).dataSync()], [Math.exp(-0.5) + 0.5 - 1, Math.exp(1) - 1 - 1]);
  close(maskedMean(KL_PENALTIES.k3(lp, ref), t2([[1, 0]])).dataSync()[0], Math.exp(-0.5) - 0.5);
});

test('clipped value loss', () => {
  // V = [1.0, 0.0], V_old = [0.5, 0.5], R = [2, 1], clip 0.2
  // token 0: (1-2)^2 = 1; clipped V = 0.7 → (0.7-2)^2 = 1.69; max 1.69
  // token 1: (0-1)^2 = 1; clipped V = 0.3 → (0.3-1)^2 = 0.49; max 1
  // loss = 0.5 * mean(1.69, 1) = 0.6725
  const l = clippedValueLoss(t2([[1, 0]]), t2([[0.5, 0.5]]), t2([[2, 1]]), t2([[1, 1]]), 0.2);
  close(l.dataSync()[0], 0.6725);
  // gradient: token 0 uses the clipped value (constant outside the range) → 0; token 1: 0.5 * 2 (V-R) / 2 = -0.5
  const g = tf.grad((v: tf.Tensor) => clippedValueLoss(v, t2([[0.5, 0.5]]), t2([[2, 1]]), t2([[1, 1]]), 0.2))(t2([[1, 0]]));
  closeAll([...g.dataSync()], [0, -0.5]);
});
