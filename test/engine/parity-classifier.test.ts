/**
 * Sequence-classifier parity with transformers: test/fixtures/parity/qwen2-seqcls is a tiny random
 * Qwen2ForSequenceClassification saved by transformers, and classifier-reference.json holds what
 * transformers computes on it (scripts/parity/make_classifier_fixture.py): HuatuoGPT-o1's verifier
 * inputs, tokenized and scored alone and as one padded batch, and raw rows with pad tokens inside
 * and at the end. Our loader, trunk, pooled-token pick and score head must give the same logits
 * and P(True) (softmax index 1) within 1e-4.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../engine/backend.ts';
import { isSequenceClassifier, loadSequenceClassifier, parseClassifierConfig, pooledIndex } from '../../engine/classifier.ts';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { openSafetensors, writeSafetensors } from '../../engine/safetensors.ts';
import { readJsonFile } from '../../common/fs.ts';
import { huatuoVerifierInput } from '../../data/prompts/verify.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/parity/', import.meta.url));
const DIR = join(FIXTURE, 'qwen2-seqcls');
const TOL = 1e-4;

interface Scored { ids: number[]; logits: number[]; p_true: number }
interface Ref {
  pad_token_id: number;
  eos_token: string;
  verifier_inputs: (Scored & { response: string; reference: string; text: string; batch_logits: number[]; batch_p_true: number })[];
  raw_rows: Scored[];
}
const ref = readJsonFile<Ref>(join(FIXTURE, 'classifier-reference.json'));

before(async () => { await initBackend(); });

const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) < TOL);

test('the fixture folder is a sequence classifier; its config gives two labels and the pad id', () => {
  assert.equal(isSequenceClassifier(DIR), true);
  assert.equal(isSequenceClassifier(join(FIXTURE, 'qwen2-f32')), false);
  const c = parseClassifierConfig(readJsonFile(join(DIR, 'config.json')));
  assert.equal(c.architecture, 'Qwen2ForSequenceClassification');
  assert.equal(c.numLabels, 2);
  assert.equal(c.padTokenId, ref.pad_token_id);
});

test('verifier inputs: the same text, ids, logits and P(True) as transformers, alone and as one batch', async () => {
  const clf = await loadSequenceClassifier(DIR);
  const tok = Tokenizer.load(DIR);
  try {
    assert.equal(tok.idToToken(tok.eosTokenId!), ref.eos_token);
    const rows: number[][] = [];
    for (const r of ref.verifier_inputs) {
      assert.equal(huatuoVerifierInput(r.response, r.reference, ref.eos_token), r.text);
      const ids = tok.encode(r.text, { addSpecialTokens: false });
      assert.deepEqual(ids, r.ids, 'tokenization');
      rows.push(ids);
      const logits = clf.logits([ids])[0];
      assert.ok(close(logits, r.logits), `logits ${logits} vs ${r.logits}`);
      const p = clf.probabilities([ids])[0][1];
      assert.ok(Math.abs(p - r.p_true) < TOL, `P(True) ${p} vs ${r.p_true}`);
    }
    const batch = clf.probabilities(rows);
    ref.verifier_inputs.forEach((r, i) => assert.ok(Math.abs(batch[i][1] - r.batch_p_true) < TOL, `batch row ${i}: ${batch[i][1]} vs ${r.batch_p_true}`));
    // The reference's P(True) values differ, so agreement is not a constant.
    assert.ok(new Set(ref.verifier_inputs.map((r) => r.p_true.toFixed(3))).size === ref.verifier_inputs.length);
  } finally {
    clf.dispose();
  }
});

test('the pooled token: the rightmost non-pad one, as transformers picks it (trailing pads skipped, inner pads kept)', async () => {
  const clf = await loadSequenceClassifier(DIR);
  try {
    for (const r of ref.raw_rows) {
      const p = clf.probabilities([r.ids])[0];
      assert.ok(Math.abs(p[1] - r.p_true) < TOL, `${JSON.stringify(r.ids)}: ${p[1]} vs ${r.p_true}`);
      assert.ok(close(clf.logits([r.ids])[0], r.logits));
    }
    const together = clf.probabilities(ref.raw_rows.map((r) => r.ids));
    ref.raw_rows.forEach((r, i) => assert.ok(Math.abs(together[i][1] - r.p_true) < TOL, `row ${i} in a batch`));
  } finally {
    clf.dispose();
  }
  const pad = ref.pad_token_id;
  assert.equal(pooledIndex([5, 6, pad, pad], pad), 1);
  assert.equal(pooledIndex([5, pad, 6], pad), 2);
  assert.equal(pooledIndex([pad, pad], pad), 0);
  assert.equal(pooledIndex([5, pad], undefined), 1);
  assert.throws(() => pooledIndex([], pad), /empty row/);
});

test('a folder that does not match: clear errors (architecture, labels, a score bias)', () => {
  const cfg = readJsonFile<Record<string, unknown>>(join(DIR, 'config.json'));
  assert.throws(() => parseClassifierConfig({ ...cfg, architectures: ['MistralForSequenceClassification'] }, 'x/config.json'),
    /x\/config\.json: architectures \["MistralForSequenceClassification"\] names no sequence classifier the engine runs: use Qwen2ForSequenceClassification or LlamaForSequenceClassification/);
  assert.throws(() => parseClassifierConfig({ ...cfg, num_labels: 3, id2label: { 0: 'False', 1: 'True' } }), /"num_labels" is 3 but "id2label" names 2 labels/);
  assert.equal(parseClassifierConfig({ ...cfg, id2label: { 0: 'a', 1: 'b', 2: 'c' } }).numLabels, 3);
});

test('a score head with a bias is refused, naming the tensor', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'da-seqcls-'));
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DIR, f), join(dir, f));
  const src = openSafetensors(join(DIR, 'model.safetensors'));
  const tensors = [...src.tensors.entries()].map(([name, e]) => ({ name, shape: e.shape, data: src.read(name) }));
  src.close();
  writeSafetensors(join(dir, 'model.safetensors'), [...tensors, { name: 'score.bias', shape: [2], data: new Float32Array(2) }]);
  await assert.rejects(loadSequenceClassifier(dir), /model\.safetensors: unexpected tensor "score\.bias"/);
  // Three labels in config.json against a head of two: the shape is named.
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...readJsonFile<object>(join(DIR, 'config.json')), num_labels: 3 }));
  await assert.rejects(loadSequenceClassifier(dir), /tensor "score\.weight" has shape \[2,32\], expected \[3,32\]/);
});
