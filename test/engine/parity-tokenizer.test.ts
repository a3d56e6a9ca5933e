/**
 * Tokenizer parity with Python. Two fixture tokenizers: `tokenizer/`, made by our
 * `doctor-agent tokenizer train` (Qwen2 style, ChatML), and `tokenizer-python/`, made by Python
 * `tokenizers` in the Llama 3 style (digit runs, ignore_merges, a BOS-adding post-processor, the chat
 * template in chat_template.jinja). Their encodings, decodings and chat renderings were recorded by
 * Hugging Face `tokenizers` and `transformers` (scripts/parity/make_fixture.py); here the same files
 * go through our Tokenizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Tokenizer, type ChatMessage } from '../../engine/tokenizer.ts';
import { readJsonFile } from '../../common/fs.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/parity/', import.meta.url));

interface TokenizerRef {
  vocab_size: number;
  eos_token_id: number;
  pad_token_id: number;
  bos_token_id: number | null;
  encodings: { text: string; ids: number[]; ids_no_special: number[]; tokens: string[]; decoded: string; decoded_skip_special: string }[];
  chats: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string; ids: number[] }[];
}

const refs = readJsonFile<Record<string, TokenizerRef>>(FIXTURE + 'reference.json');

for (const [folder, key] of [['tokenizer', 'tokenizer'], ['tokenizer-python', 'tokenizer_python']]) {
  const ref = refs[key];
  const tok = Tokenizer.load(FIXTURE + folder);

  test(`parity ${folder}: vocabulary size and special ids match transformers`, () => {
    assert.equal(tok.vocabSize, ref.vocab_size);
    assert.equal(tok.eosTokenId, ref.eos_token_id);
    assert.equal(tok.padTokenId, ref.pad_token_id);
    assert.equal(tok.bosTokenId, ref.bos_token_id);
  });

  test(`parity ${folder}: encode gives the same ids and tokens as Python on the whole text set`, () => {
    assert.ok(ref.encodings.length >= 25);
    assert.ok(ref.encodings.some((e) => /[^\x00-\x7f]/.test(e.text)), 'the set includes non-ASCII');
    for (const e of ref.encodings) {
      assert.deepEqual(tok.encode(e.text), e.ids, JSON.stringify(e.text));
      assert.deepEqual(tok.encode(e.text, { addSpecialTokens: false }), e.ids_no_special, JSON.stringify(e.text));
      assert.deepEqual(tok.tokenize(e.text), e.tokens, JSON.stringify(e.text));
    }
  });

  test(`parity ${folder}: decode matches Python, with and without special tokens`, () => {
    for (const e of ref.encodings) {
      assert.equal(tok.decode(e.ids), e.decoded, JSON.stringify(e.text));
      assert.equal(tok.decode(e.ids, { skipSpecialTokens: true }), e.decoded_skip_special, JSON.stringify(e.text));
    }
  });

  test(`parity ${folder}: chat template renders and encodes as transformers does`, () => {
    assert.ok(ref.chats.length >= 4);
    for (const c of ref.chats) {
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      assert.equal(text, c.text);
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), c.ids);
    }
  });
}

test('parity: the two tokenizers differ where their styles differ (the comparison is not vacuous)', () => {
  const ours = refs.tokenizer.encodings, theirs = refs.tokenizer_python.encodings;
  assert.ok(theirs.every((e) => e.ids[0] === refs.tokenizer_python.bos_token_id), 'the Python tokenizer adds BOS');
  assert.ok(ours.some((e, i) => JSON.stringify(e.ids_no_special) !== JSON.stringify(theirs[i].ids_no_special)));
});
