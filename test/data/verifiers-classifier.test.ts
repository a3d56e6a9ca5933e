/**
 * HuatuoGPT-o1's verifier as a sequence classifier, end to end on the parity fixture
 * test/fixtures/parity/qwen2-seqcls (a tiny random Qwen2ForSequenceClassification whose P(True)
 * values transformers computed, classifier-reference.json): the model verifier picks the
 * classifier for such a folder, scores the recipe's verifier input, decides by P(True) > threshold,
 * and an RL step scores its rollouts with it.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../engine/backend.ts';
import { saveModel } from '../../engine/checkpoint.ts';
import { CausalLM } from '../../engine/model.ts';
import { ClassifierScorer, VERIFIER_MAX_LENGTH } from '../../data/verifier-engine.ts';
import { ClassifierVerifier, makeVerifier } from '../../data/verifiers.ts';
import { huatuoVerifierInput, NO_ANSWER } from '../../data/prompts/verify.ts';
import { score } from '../../rl/score.ts';
import { run as runGrpo } from '../../jobs/rl.grpo.ts';
import type { VerifiableItem } from '../../data/formats.ts';
import { readJsonFile } from '../../common/fs.ts';
import { tinyConfig } from '../engine/tiny.ts';
import { tempDir } from '../train/helpers.ts';
import { recordingContext } from './job-ctx.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/parity/', import.meta.url));
const DIR = join(FIXTURE, 'qwen2-seqcls');
const ref = readJsonFile<{ eos_token: string; verifier_inputs: { response: string; reference: string; text: string; p_true: number }[] }>(
  join(FIXTURE, 'classifier-reference.json'));

before(async () => { await initBackend(); });

test('the model verifier on a classifier folder: P(True) of the recipe\'s verifier input, as transformers computes it', async () => {
  const v = makeVerifier({ type: 'model', model: DIR });
  try {
    assert.ok(v instanceof ClassifierVerifier);
    for (const r of ref.verifier_inputs) {
      const d = await v.verify({ response: r.response, reference: r.reference, question: 'not part of the verifier input' });
      assert.ok(Math.abs(d.score - r.p_true) < 1e-4, `${d.score} vs ${r.p_true}`);
      assert.equal(d.correct, r.p_true > 0.4);
    }
  } finally {
    v.close?.();
  }
  // A threshold between the fixture's P(True) values splits them.
  const sorted = ref.verifier_inputs.map((r) => r.p_true).sort((a, b) => a - b);
  const threshold = (sorted[1] + sorted[2]) / 2;
  const v2 = makeVerifier({ type: 'model', model: DIR, threshold });
  try {
    const verdicts = await Promise.all(ref.verifier_inputs.map((r) => v2.verify({ response: r.response, reference: r.reference })));
    assert.deepEqual(verdicts.map((d) => d.correct), ref.verifier_inputs.map((r) => r.p_true > threshold));
    assert.equal(verdicts.filter((d) => d.correct).length, 2);
  } finally {
    v2.close?.();
  }
});

test('RL scoring with the classifier: the stripped final response goes into the template; rewards 1 / 0.1 / 0', async () => {
  const s = await ClassifierScorer.load(DIR);
  try {
    assert.equal(s.eosToken, ref.eos_token);
    const [a, b] = ref.verifier_inputs;
    const items: VerifiableItem[] = [a, b].map((r) => ({ 'Open-ended Verifiable Question': 'Q?', 'Ground-True Answer': r.reference }));
    const texts = [
      `## Thinking\n\nLet me see.\n\n## Final Response\n\n  ${a.response}\n`,
      `## Thinking\n\nHmm.\n\n## Final Response\n\n${b.response}`,
      `## Thinking\n\nHmm.\n\n## Final Response:\n${b.response}`,
    ];
    assert.equal(s.inputText(a.response, a.reference), a.text);
    const threshold = (a.p_true + b.p_true) / 2;
    const before = s.forwardPasses;
    const verifier = new ClassifierVerifier(({ response, reference }) => s.score(s.inputText(response, reference)), threshold);
    const out = await score(texts, items, [0, 1, 1], verifier);
    assert.equal(s.forwardPasses - before, 1, 'a rollout is scored in one forward pass');
    const want = (p: number) => (p > threshold ? 1 : 0.1);
    assert.deepEqual(out.rewards, [want(a.p_true), want(b.p_true), 0]);
    assert.deepEqual(out.formatted, [true, true, false]);
    assert.notEqual(out.rewards[0], out.rewards[1], 'the threshold splits the two');
    // The malformed response's stand-in answer, and truncation to the first 4000 tokens.
    assert.match(s.inputText(null, 'X'), new RegExp(`^<Model Response>\\n${NO_ANSWER.replace('.', '\\.')}\\n</Model Response>`));
    assert.equal(VERIFIER_MAX_LENGTH, 4000);
  } finally {
    s.close();
  }
  const short = await ClassifierScorer.load(DIR, { maxLength: 12 });
  try {
    const text = huatuoVerifierInput('A long answer', 'B', short.eosToken);
    assert.deepEqual(short.inputIds(text), short.tokenizer.encode(text, { addSpecialTokens: false }).slice(0, 12));
  } finally {
    short.close();
  }
});

test('an RL step scores its rollouts with the classifier folder given as its verifier', async () => {
  const dir = tempDir('grpo-classifier');
  const policy = join(dir, 'policy');
  const model = new CausalLM(tinyConfig({ vocab_size: 1024 })).initRandom(5);
  await saveModel(model, policy, { tokenizerDir: join(FIXTURE, 'tokenizer') });
  model.dispose();
  const data = join(dir, 'verifiable.json');
  writeFileSync(data, JSON.stringify([{ 'Open-ended Verifiable Question': 'Which organ fails?', 'Ground-True Answer': 'heart' }]));
  // P(True) lies strictly between 0 and 1: threshold 0 accepts every answer, 1 none (accuracy counts
  // every response's verdict; the random policy's malformed responses still earn 0).
  for (const threshold of [0, 1]) {
    const ctx = recordingContext({
      policy, data, verifier: { type: 'model', model: DIR, threshold }, num_generations: 2, response_length: 4, max_prompt_len: 64,
      iterations: 1, prompts_per_iteration: 1, mini_batch_size: 2, save_every: 10, seed: 1,
    }, join(dir, `run-${threshold}`));
    const r = await runGrpo(ctx);
    const metrics = readFileSync(r.metrics as string, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(metrics[0].accuracy, threshold === 0 ? 1 : 0);
    assert.equal(metrics[0].lr, 0, 'the first iteration of the linear schedule with warmup runs at lr 0');
  }
});
