// The model verifier on a checkpoint of the built-in engine: a tiny random checkpoint made
// here (real files on disk), scored in-process and checked against model.forward directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { loadModel } from '../../engine/checkpoint.ts';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { EngineScorer } from '../../data/verifier-engine.ts';
import { makeVerifier, ModelVerifier, type VerifyInput } from '../../data/verifiers.ts';
import { judgePrompt } from '../../data/prompts/verify.ts';
import { score } from '../../rl/score.ts';
import { tinyModel } from '../evaluation/tiny-model.ts';
import { compileText } from '../dsl/helpers.ts';
import { run as runGrpo } from '../../jobs/rl.grpo.ts';
import { recordingContext } from './job-ctx.ts';

// A wide initialisation makes the random model's P(True) differ clearly between prompts.
const dir = await tinyModel(11, { initializerRange: 0.5 });

const inputs: VerifyInput[] = [
  { response: 'Parvovirus B19 infection', reference: 'Parvovirus B19 infection', question: 'What causes aplastic crisis in sickle cell disease?' },
  { response: 'Iron deficiency', reference: 'Parvovirus B19 infection' },
  { response: 'The answer is C.', reference: 'Folate deficiency', options: { A: 'Iron deficiency', B: 'B12 deficiency', C: 'Folate deficiency' } },
  { response: 'heart attack', reference: 'myocardial infarction', question: 'A 60-year-old man has crushing chest pain radiating to the left arm and ST elevation in II, III and aVF. Diagnosis?' },
  { response: 'MI', reference: 'Myocardial infarction' },
];

/** P(True) from one unpadded forward pass and a full softmax, with the answer ids found independently. */
async function directPTrue(prompt: string): Promise<number> {
  const { model } = await loadModel(dir);
  const tok = Tokenizer.load(dir);
  try {
    const ids = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    const input = tf.tensor2d([ids], [1, ids.length], 'int32');
    const logits = model.forward(input);
    input.dispose();
    const all = logits.arraySync()[0];
    logits.dispose();
    const last = all[all.length - 1];
    const z = last.reduce((s, l) => s + Math.exp(l), 0);
    const p = (word: string) => Math.exp(last[tok.encode(word, { addSpecialTokens: false })[0]]) / z;
    const t = p('True') + p(' True');
    return t / (t + p('False') + p(' False'));
  } finally {
    model.dispose();
  }
}

test('P(True) equals the softmax of model.forward at the last position', async () => {
  const scorer = await EngineScorer.load(dir);
  try {
    assert.equal(scorer.answerIds.true.length, 2, '"True" and " True" start with different tokens in this vocabulary');
    for (const input of inputs.slice(0, 3)) {
      const prompt = judgePrompt(input);
      const [got] = scorer.scoreBatch([prompt]);
      const want = await directPTrue(prompt);
      assert.ok(Math.abs(got - want) < 1e-5, `scorer ${got} vs direct ${want}`);
    }
  } finally {
    scorer.close();
  }
});

test('a batch of prompts of different lengths scores as each does alone, in one forward pass', async () => {
  const scorer = await EngineScorer.load(dir);
  try {
    const prompts = inputs.map(judgePrompt);
    const alone = prompts.map((p) => scorer.scoreBatch([p])[0]);
    assert.ok(Math.max(...alone) - Math.min(...alone) > 1e-3, `the prompts should score differently: ${alone}`);
    const before = scorer.forwardPasses;
    const together = await Promise.all(prompts.map((p) => scorer.score(p)));
    assert.equal(scorer.forwardPasses - before, 1, 'calls made together share one forward pass');
    together.forEach((p, i) => assert.ok(Math.abs(p - alone[i]) < 1e-5, `prompt ${i}: batched ${p} vs alone ${alone[i]}`));
    const small = await EngineScorer.load(dir, { maxBatch: 2 });
    const n = small.forwardPasses;
    const chunked = small.scoreBatch(prompts);
    assert.equal(small.forwardPasses - n, 3, '5 prompts in batches of 2');
    chunked.forEach((p, i) => assert.ok(Math.abs(p - alone[i]) < 1e-5));
    small.close();
  } finally {
    scorer.close();
  }
});

test('the threshold decides correct; the score is P(True)', async () => {
  const scorer = await EngineScorer.load(dir);
  const ps = scorer.scoreBatch(inputs.map(judgePrompt));
  scorer.close();
  const sorted = [...ps].sort((a, b) => a - b);
  const threshold = (sorted[2] + sorted[3]) / 2;
  const v = makeVerifier({ type: 'model', model: dir, threshold });
  try {
    assert.equal(v.name, 'model');
    const verdicts = await Promise.all(inputs.map((i) => v.verify(i)));
    verdicts.forEach((d, i) => {
      assert.ok(Math.abs(d.score - ps[i]) < 1e-6);
      assert.equal(d.correct, ps[i] > threshold, `P(True)=${ps[i]} threshold ${threshold}`);
    });
    assert.equal(verdicts.filter((d) => d.correct).length, 2);
    assert.match(verdicts.find((d) => !d.correct)!.reason, /<= threshold/);
  } finally {
    v.close?.();
  }
});

test('a judge prompt longer than the context keeps its end (the question to answer)', async () => {
  const short = await tinyModel(11, { initializerRange: 0.5, context: 64 });
  const scorer = await EngineScorer.load(short);
  try {
    const prompt = judgePrompt(inputs[3]);
    const full = scorer.tokenizer.encode(scorer.tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    assert.ok(full.length > 64);
    assert.deepEqual(scorer.promptIds(prompt), full.slice(-64));
    const [p] = scorer.scoreBatch([prompt]);
    assert.ok(p > 0 && p < 1, `P(True) ${p}`);
  } finally {
    scorer.close();
  }
});

test('pipeline: the model verifier takes exactly one of model and base_url', () => {
  const yaml = (verifier: string) => `name: t\nsteps:\n  - id: g\n    uses: rl.grpo\n    with:\n      policy: p\n      data: d.json\n      verifier: ${verifier}\n`;
  const ok = compileText(yaml('{ type: model, model: ./ckpt, threshold: 0.4 }'));
  assert.deepEqual(ok.errors, []);
  const served = compileText(yaml('{ type: model, base_url: "http://127.0.0.1:30000/v1", served_model: judge }'));
  assert.deepEqual(served.errors, []);
  const both = compileText(yaml('{ type: model, model: ./ckpt, base_url: "http://127.0.0.1:30000/v1" }'));
  assert.deepEqual(both.errors.map((e) => [e.line, e.col, e.message]), [[8, 57, 'with.verifier.base_url: give one of model (a checkpoint folder, scored in-process) or base_url (a server answering with logprobs), not both']]);
  const neither = compileText(yaml('{ type: model, threshold: 0.5 }'));
  assert.deepEqual(neither.errors.map((e) => [e.line, e.col, e.message]), [[8, 17, 'with.verifier: give one of model (a checkpoint folder, scored in-process) or base_url (a server answering with logprobs)']]);
  const unnamed = compileText(yaml('{ type: model, base_url: "http://127.0.0.1:30000/v1" }'));
  assert.deepEqual(unnamed.errors.map((e) => [e.line, e.col]), [[8, 42]]);
  assert.match(unnamed.errors[0].message, /served_model/);
});

test('RL scoring with the model verifier: one forward pass for the whole rollout', async () => {
  const items = [
    { 'Open-ended Verifiable Question': 'Most common cause of aplastic crisis in sickle cell disease?', 'Ground-True Answer': 'Parvovirus B19 infection' },
    { 'Open-ended Verifiable Question': 'First-line treatment of anaphylaxis?', 'Ground-True Answer': 'Intramuscular epinephrine' },
  ];
  const texts = [
    '## Thinking\n\nAplastic crisis points to a virus.\n\n## Final Response\n\nParvovirus B19',
    '## Thinking\n\nMaybe iron.\n\n## Final Response\n\nIron deficiency',
    'Final answer without headings: epinephrine',
    '## Thinking\n\nAirway first.\n\n## Final Response\n\nIM epinephrine 0.5 mg',
  ];
  const group = [0, 0, 1, 1];
  const scorer = await EngineScorer.load(dir);
  try {
    const expected = scorer.scoreBatch(texts.map((t, i) => judgePrompt({
      response: t.includes('## Final Response') ? t.slice(t.lastIndexOf('## Final Response') + 17).trim() : t,
      reference: items[group[i]]['Ground-True Answer'],
      question: items[group[i]]['Open-ended Verifiable Question'],
    })));
    const threshold = [...expected].sort((a, b) => a - b)[1] + 1e-9;
    const before = scorer.forwardPasses;
    const s = await score(texts, items, group, new ModelVerifier((p) => scorer.score(p), threshold));
    assert.equal(scorer.forwardPasses - before, 1);
    assert.deepEqual(s.correct, expected.map((p) => p > threshold));
    assert.deepEqual(s.formatted, [true, true, false, true]);
    assert.deepEqual(s.rewards, texts.map((_, i) => (i === 2 ? 0 : expected[i] > threshold ? 1 : 0.1)));
    // The same through the pipeline's config.
    const v = makeVerifier({ type: 'model', model: dir, threshold });
    const viaConfig = await score(texts, items, group, v);
    v.close?.();
    assert.deepEqual(viaConfig, s);
  } finally {
    scorer.close();
  }
});

test('a GRPO job scores its rollouts with the checkpoint verifier given in its params', async () => {
  const data = join(dirname(dir), 'verifiable.json');
  writeFileSync(data, JSON.stringify([
    { 'Open-ended Verifiable Question': 'Which organ fails in case 1?', 'Ground-True Answer': 'heart' },
    { 'Open-ended Verifiable Question': 'Which organ fails in case 2?', 'Ground-True Answer': 'liver' },
  ]));
  // P(True) lies strictly between 0 and 1, so threshold 0 accepts every response and 1 none
  // (accuracy counts the verdicts of malformed responses too; their reward stays 0).
  for (const threshold of [0, 1]) {
    const ctx = recordingContext({
      policy: dir, data, verifier: { type: 'model', model: dir, threshold }, num_generations: 2, temperature: 1.0, response_length: 6,
      max_prompt_len: 64, learning_rate: 1e-3, iterations: 1, prompts_per_iteration: 2, mini_batch_size: 4, save_every: 10, seed: 3,
    }, join(dirname(dir), `grpo-${threshold}`));
    await runGrpo(ctx);
    const metrics = ctx.messages.flatMap((m) => (m.type === 'metric' ? [m.values] : []));
    assert.equal(metrics.length, 1);
    assert.equal(metrics[0].accuracy, threshold === 0 ? 1 : 0);
  }
});
