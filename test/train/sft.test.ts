/**
 * train.sft: the loss mask covers exactly the assistant turn, the loss falls on a small set,
 * and a run SIGKILLed after a checkpoint and resumed ends with the same bytes as one never
 * interrupted (child processes through jobs/main.ts, as the supervisor runs them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { saveTrainedTokenizer, trainTokenizer } from '../../engine/tokenizer-train.ts';
import { readCorpusFile } from '../../data/tokenizer-corpus.ts';
import { sftTarget, type SftItem } from '../../data/formats.ts';
import { encodeSft, renderSft } from '../../train/sft-data.ts';
import { run } from '../../jobs/train.sft.ts';
import { recordingContext } from '../data/job-ctx.ts';
import { startJob, tempDir, writeKbData } from './helpers.ts';

const dir = tempDir('sft-test');
const data = writeKbData(join(dir, 'data'), 8);
const items = JSON.parse(readFileSync(data.sft, 'utf8')) as SftItem[];

function tokenizer(): Tokenizer {
  const tdir = join(dir, 'tok');
  if (!existsSync(join(tdir, 'tokenizer.json'))) saveTrainedTokenizer(trainTokenizer(readCorpusFile(data.sft), { vocabSize: 500 }), tdir);
  return Tokenizer.load(tdir);
}

test('the loss mask is 1 on exactly the assistant turn tokens', () => {
  const tok = tokenizer();
  const item = items[0];
  const ex = encodeSft(tok, item, 10_000)!;
  const scored = ex.ids.filter((_, i) => ex.mask[i] === 1);
  const unscored = ex.ids.filter((_, i) => ex.mask[i] === 0);
  // The mask is one block: zeros then ones.
  const first = ex.mask.indexOf(1);
  assert.ok(first > 0);
  assert.ok(ex.mask.slice(first).every((m) => m === 1));
  assert.equal(tok.decode(unscored), `<|im_start|>user\n${item.Question}<|im_end|>\n<|im_start|>assistant\n`);
  assert.equal(tok.decode(scored), `${sftTarget(item)}<|im_end|>\n`);
  assert.ok(tok.decode(scored).startsWith('## Thinking\n\n'));
  // The end-of-turn token is scored, so the model learns to stop.
  assert.ok(scored.includes(tok.eosTokenId!));
  const [prompt, completion] = renderSft(tok, item);
  assert.equal(prompt + completion, tok.applyChatTemplate([{ role: 'user', content: item.Question }, { role: 'assistant', content: sftTarget(item) }]));
});

test('truncation keeps the prompt start and cuts the answer; nothing scored means dropped', () => {
  const tok = tokenizer();
  const full = encodeSft(tok, items[1], 10_000)!;
  const promptLen = full.mask.indexOf(1);
  const cut = encodeSft(tok, items[1], promptLen + 5)!;
  assert.equal(cut.ids.length, promptLen + 5);
  assert.deepEqual(cut.ids, full.ids.slice(0, promptLen + 5));
  assert.equal(cut.mask.filter((m) => m === 1).length, 5);
  assert.equal(encodeSft(tok, items[1], promptLen), null);
});

const base = { model: 'preset:tiny', tokenizer_vocab_size: 500, data: data.sft, learning_rate: 0.004, batch_size: 4, gradient_accumulation_steps: 1, max_seq_len: 200, warmup_ratio: 0.1, weight_decay: 0.01, seed: 3 };

test('the loss falls on a small set; metrics and final HF folder', async () => {
  const out = join(dir, 'learn');
  const ctx = recordingContext({ ...base, data: data.sft, epochs: 5, save_every: 1000 }, out);
  const r = await run(ctx);
  const losses = ctx.messages.flatMap((m) => (m.type === 'metric' ? [m.values.loss] : []));
  assert.equal(losses.length, 10); // 8 items / 4 per batch × 5 epochs
  assert.ok(losses.at(-1)! < losses[0] - 0.8, `loss ${losses[0]} → ${losses.at(-1)}`);
  const m = ctx.messages.find((x) => x.type === 'metric')!;
  assert.deepEqual(Object.keys((m as { values: object }).values).sort(), ['epoch', 'grad_norm', 'loss', 'lr', 'tokens_per_s']);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    assert.ok(existsSync(join(r.checkpoint as string, f)), f);
  }
  const cfg = JSON.parse(readFileSync(join(r.checkpoint as string, 'config.json'), 'utf8'));
  assert.equal(cfg.vocab_size, 500);
});

test('SIGKILL after a checkpoint, resume: final weights bit-identical to an uninterrupted run', async () => {
  const params = { ...base, epochs: 2, save_every: 2 };
  const job = (name: string, resumeFrom?: string) =>
    ({ kind: 'train.sft', runId: 'r', stepId: name, params, outDir: join(dir, name), attempt: resumeFrom ? 2 : 1, resumeFrom });

  const straight = startJob(job('straight'), () => {});
  assert.equal(await straight.done, 0);

  let checkpoint: string | undefined;
  const killed = startJob(job('killed'), (m, child) => {
    if (m.type === 'checkpoint' && !checkpoint) {
      checkpoint = m.path;
      child.kill('SIGKILL');
    }
  });
  assert.equal(await killed.done, null, 'the first attempt dies by SIGKILL');
  assert.ok(checkpoint && existsSync(join(checkpoint, 'trainer_state.json')));
  assert.ok(!existsSync(join(dir, 'killed', 'checkpoint')), 'killed before the end');
  // No half-written checkpoint is visible under its final name.
  for (const n of readdirSync(join(dir, 'killed', 'checkpoints'))) {
    if (/^step-\d+$/.test(n)) assert.ok(existsSync(join(dir, 'killed', 'checkpoints', n, 'trainer_state.json')));
  }

  const resumed = startJob(job('killed', checkpoint), () => {});
  assert.equal(await resumed.done, 0);
  const a = readFileSync(join(dir, 'straight', 'checkpoint', 'model.safetensors'));
  const b = readFileSync(join(dir, 'killed', 'checkpoint', 'model.safetensors'));
  assert.equal(Buffer.compare(a, b), 0, 'final model.safetensors bytes differ');
});

test('SFT from a Hugging Face model folder keeps its tokenizer; a bad model path is a user error naming it', async () => {
  const first = await run(recordingContext({ ...base, epochs: 1, save_every: 1000 }, join(dir, 'hf-start-0')));
  const from = first.checkpoint as string;
  const ctx = recordingContext({ ...base, model: from, epochs: 1, save_every: 1000 }, join(dir, 'hf-start'));
  const r = await run(ctx);
  assert.equal(readFileSync(join(r.checkpoint as string, 'tokenizer.json'), 'utf8'), readFileSync(join(from, 'tokenizer.json'), 'utf8'));
  assert.ok(!existsSync(join(dir, 'hf-start', 'tokenizer')), 'no tokenizer is trained when the model brings one');
  await assert.rejects(run(recordingContext({ ...base, model: join(dir, 'nowhere'), epochs: 1 }, join(dir, 'bad'))),
    (e: Error) => e.name === 'UserError' && e.message.includes('nowhere') && e.message.includes('not a model folder'));
  await assert.rejects(run(recordingContext({ ...base, model: 'preset:huge', epochs: 1 }, join(dir, 'bad2'))), /unknown preset "huge"/);
});

test('SFT checkpoints by wall-clock time too: save_every_minutes before save_every steps', async () => {
  const ctx = recordingContext({ ...base, epochs: 1, save_every: 1000, save_every_minutes: 1e-6 }, join(dir, 'timed'));
  await run(ctx);
  const steps = ctx.messages.flatMap((m) => (m.type === 'checkpoint' ? [m.step] : []));
  assert.deepEqual(steps, [1], 'a checkpoint after every step but the last (8 items / 4 per batch)');
});
