import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { trainTokenizer, saveTrainedTokenizer, byteAlphabet } from '../../engine/tokenizer-train.ts';
import { readCorpus } from '../../data/tokenizer-corpus.ts';
import { registerTokenizerCommands } from '../../cli/commands/tokenizer.ts';

const DEMO = new URL('../../samples/huatuo-o1-demo.json', import.meta.url).pathname;

const SAMPLES = [
  'A 45-year-old man presents with chest pain radiating to the left arm.',
  'Give 5 µg/kg IV; repeat if SpO₂ ≥ 94% is not reached.',
  'Le patient a une fièvre élevée — café, naïve, Ærøskøbing.',
  '患者出现发热和咳嗽，诊断为肺炎。',
  'Heart 🫀 and lungs 🫁, emoji with modifiers 👩🏽‍⚕️.',
  "It's what they'd've said: DON'T stop.\n\n  indented\ttab\r\nwindows line",
  '   leading and trailing spaces   ',
  '',
];

let dir: string;
let tok: Tokenizer;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tok-test-'));
  const texts = readCorpus([DEMO]);
  const trained = trainTokenizer(texts, { vocabSize: 1200 });
  assert.equal(trained.stats.vocabSize, 1200);
  saveTrainedTokenizer(trained, join(dir, 'tok'));
  tok = Tokenizer.load(join(dir, 'tok'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('trained tokenizer: exact vocabulary size, bytes first, special tokens last', () => {
  assert.equal(tok.vocabSize, 1200);
  const alphabet = byteAlphabet();
  assert.equal(new Set(alphabet).size, 256);
  for (let b = 0; b < 256; b++) assert.equal(tok.tokenToId(alphabet[b]), b);
  assert.equal(tok.tokenToId('<|endoftext|>'), 1197);
  assert.equal(tok.tokenToId('<|im_start|>'), 1198);
  assert.equal(tok.tokenToId('<|im_end|>'), 1199);
  assert.equal(tok.eosTokenId, 1199);
  assert.equal(tok.padTokenId, 1197);
  assert.equal(tok.bosTokenId, null);
  assert.deepEqual(tok.eosTokenIds, [1199]);
});

test('trained tokenizer: decode(encode(text)) gives the text back, including non-ASCII', () => {
  for (const text of SAMPLES) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text.normalize('NFC'), JSON.stringify(text));
  }
});

test('trained tokenizer: learned merges compress common medical English', () => {
  const text = 'The patient presents with symptoms of the disease and the treatment is';
  const ids = tok.encode(text);
  const bytes = Buffer.byteLength(text);
  assert.ok(ids.length < bytes / 2.5, `${ids.length} tokens for ${bytes} bytes`);
  assert.ok(tok.tokenize(' patient').length === 1, `tokens: ${tok.tokenize(' patient')}`);
});

test('special tokens are single ids, and skipSpecialTokens drops them', () => {
  const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
  assert.equal(ids[0], 1198);
  assert.equal(ids[ids.length - 1], 1199);
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
  assert.equal(tok.decode(ids), '<|im_start|>user\nhi<|im_end|>');
});

test('applyChatTemplate renders ChatML, with and without the generation prompt', () => {
  const messages = [
    { role: 'system', content: 'You are a careful doctor.' },
    { role: 'user', content: 'Dose of aspirin?' },
    { role: 'assistant', content: '## Thinking\n\nLow dose.\n\n## Final Response\n\n81 mg' },
  ];
  assert.equal(
    tok.applyChatTemplate(messages.slice(0, 2), { addGenerationPrompt: true }),
    '<|im_start|>system\nYou are a careful doctor.<|im_end|>\n<|im_start|>user\nDose of aspirin?<|im_end|>\n<|im_start|>assistant\n',
  );
  const full = tok.applyChatTemplate(messages);
  assert.ok(full.endsWith('<|im_start|>assistant\n## Thinking\n\nLow dose.\n\n## Final Response\n\n81 mg<|im_end|>\n'));
  assert.ok(!full.includes('<|im_start|>assistant\n<|im_start|>'));
});

test('encodeChat gives the ids of the conversation ready for the answer (generation prompt, one <|im_start|> per turn)', () => {
  const ids = tok.encodeChat([{ role: 'user', content: 'Dose of aspirin?' }]);
  assert.equal(tok.decode(ids), '<|im_start|>user\nDose of aspirin?<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(ids[0], 1198);
  assert.equal(ids.filter((id) => id === 1198).length, 2);
});

test('batchPadId: pad_token, else the end-of-sequence token, else 0', () => {
  assert.equal(tok.batchPadId, tok.padTokenId);
  const noPad = new Tokenizer(tok.tokenizerJson, { ...tok.config, pad_token: null });
  assert.equal(noPad.padTokenId, null);
  assert.equal(noPad.batchPadId, tok.eosTokenId);
  assert.notEqual(noPad.batchPadId, tok.padTokenId);
  assert.equal(new Tokenizer(tok.tokenizerJson, { ...tok.config, pad_token: null, eos_token: null }).batchPadId, 0);
});

test('generation_config.json eos ids join the end-of-sequence set', () => {
  const d = join(dir, 'with-gen');
  saveTrainedTokenizer(trainTokenizer(['tiny text tiny text'], { vocabSize: 260 }), d);
  assert.equal(Tokenizer.load(d).vocabSize, 260); // 256 bytes + 1 merge + 3 special tokens
  writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: [257, 259] }));
  const t = Tokenizer.load(d);
  assert.equal(t.eosTokenId, 259);
  assert.deepEqual(t.eosTokenIds, [259, 257]);
});

test('load errors say which file and what to do', () => {
  const d = join(dir, 'broken');
  assert.throws(() => Tokenizer.load(d), /broken\/tokenizer\.json: file not found — .*tokenizer train/);
  saveTrainedTokenizer(trainTokenizer(['abc abc'], { vocabSize: 259 }), d);
  writeFileSync(join(d, 'tokenizer_config.json'), '{\n  "eos_token": "<|im_end|>",\n  oops\n}');
  assert.throws(() => Tokenizer.load(d), /tokenizer_config\.json:3:3: invalid JSON/);
  writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|nope|>' }));
  assert.throws(() => Tokenizer.load(d), /tokenizer_config\.json: eos_token "<\|nope\|>" is not in tokenizer\.json's vocabulary/);
  writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({}));
  assert.throws(() => Tokenizer.load(d).applyChatTemplate([{ role: 'user', content: 'x' }]), /no "chat_template"/);
  writeFileSync(join(d, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}');
  assert.equal(Tokenizer.load(d).applyChatTemplate([{ role: 'user', content: 'x' }]), '[user] x\n');
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({ version: '1.0' }));
  assert.throws(() => Tokenizer.load(d), /tokenizer\.json: not a tokenizer\.json/);
});

test('trainer is deterministic: the demo data gives exactly the committed parity tokenizer (checked against Python)', () => {
  const fixture = new URL('../fixtures/parity/tokenizer/', import.meta.url).pathname;
  const trained = trainTokenizer(readCorpus([DEMO]), { vocabSize: 1024 });
  assert.deepEqual(trained.tokenizerJson, JSON.parse(readFileSync(join(fixture, 'tokenizer.json'), 'utf8')));
  assert.deepEqual(trained.tokenizerConfig, JSON.parse(readFileSync(join(fixture, 'tokenizer_config.json'), 'utf8')));
});

test('trainer rejects a vocabulary smaller than bytes + special tokens', () => {
  assert.throws(() => trainTokenizer(['x'], { vocabSize: 200 }), /at least 259/);
});

test('corpus: .jsonl errors name the line; plain text is taken whole; SFT items add their target layout', () => {
  const jl = join(dir, 'bad.jsonl');
  writeFileSync(jl, '{"Question": "q"}\n\n{"Question": oops}\n');
  assert.throws(() => readCorpus([jl]), /bad\.jsonl:3: invalid JSON line/);
  assert.throws(() => readCorpus([join(dir, 'missing.json')]), /missing\.json: file not found/);
  const txt = join(dir, 'notes.txt');
  writeFileSync(txt, 'line one\nline two\n');
  assert.deepEqual(readCorpus([txt]), ['line one\nline two\n']);
  const sft = join(dir, 'sft.json');
  writeFileSync(sft, JSON.stringify([{ Question: 'Q?', Complex_CoT: 'think', Response: 'answer' }]));
  assert.deepEqual(readCorpus([sft]), ['## Thinking\n\nthink\n\n## Final Response\n\nanswer', 'Q?', 'think', 'answer']);
});

function cli(): Command {
  const program = new Command('doctor-agent').exitOverride();
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerTokenizerCommands(program);
  return program;
}

test('cli: tokenizer train writes a loadable folder and refuses to overwrite without --force', async () => {
  const out = join(dir, 'cli-out');
  const argv = ['tokenizer', 'train', '--data', DEMO, '--vocab-size', '400', '--out', out];
  const log = console.log;
  const lines: string[] = [];
  console.log = (line: string) => lines.push(line);
  const stderrWrite = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await cli().parseAsync(argv, { from: 'user' });
    assert.match(lines.join('\n'), /vocab 400 \(141 merges\)/);
    const written = readFileSync(join(out, 'tokenizer.json'), 'utf8');
    assert.equal(Tokenizer.load(out).vocabSize, 400);
    await assert.rejects(cli().parseAsync(argv, { from: 'user' }), /already exists — choose another --out, or pass --force/);
    assert.equal(readFileSync(join(out, 'tokenizer.json'), 'utf8'), written);
    await cli().parseAsync([...argv.slice(0, 5), '300', '--out', out, '--force'], { from: 'user' });
    assert.equal(Tokenizer.load(out).vocabSize, 300);
    await assert.rejects(cli().parseAsync([...argv.slice(0, 5), 'ten', '--out', out], { from: 'user' }), /positive integer/);
  } finally {
    console.log = log;
    process.stderr.write = stderrWrite;
  }
  assert.ok(existsSync(join(out, 'tokenizer_config.json')));
});
