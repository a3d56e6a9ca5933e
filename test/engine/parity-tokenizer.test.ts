/**
 * Tokenizer parity with Python: the fixture's tokenizer was made by `doctor-agent tokenizer train`,
 * and its encodings, decodings and chat renderings were recorded by Hugging Face `tokenizers` and
 * `transformers` (scripts/parity/make_fixture.py). Here the same files go through our Tokenizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Tokenizer, type ChatMessage } from '../../engine/tokenizer.ts';
import { readJsonFile } from '../../common/fs.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/parity/', import.meta.url));

interface Reference {
  tokenizer: {
    vocab_size: number;
    eos_token_id: number;
    pad_token_id: number;
    encodings: { text: string; ids: number[]; tokens: string[]; decoded: string; decoded_skip_special: string }[];
    chats: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string; ids: number[] }[];
  };
}

const ref = readJsonFile<Reference>(FIXTURE + 'reference.json').tokenizer;
const tok = Tokenizer.load(FIXTURE + 'tokenizer');

test('parity: vocabulary size and special ids match transformers', () => {
  assert.equal(tok.vocabSize, ref.vocab_size);
  assert.equal(tok.eosTokenId, ref.eos_token_id);
  assert.equal(tok.padTokenId, ref.pad_token_id);
});

test('parity: encode gives the same ids and tokens as Python on the whole text set', () => {
  assert.ok(ref.encodings.length >= 25);
  assert.ok(ref.encodings.some((e) => /[^\x00-\x7f]/.test(e.text)), 'the set includes non-ASCII');
  for (const e of ref.encodings) {
    assert.deepEqual(tok.encode(e.text), e.ids, JSON.stringify(e.text));
    assert.deepEqual(tok.tokenize(e.text), e.tokens, JSON.stringify(e.text));
  }
});

test('parity: decode matches Python, with and without special tokens', () => {
  for (const e of ref.encodings) {
    assert.equal(tok.decode(e.ids), e.decoded, JSON.stringify(e.text));
    assert.equal(tok.decode(e.ids, { skipSpecialTokens: true }), e.decoded_skip_special, JSON.stringify(e.text));
  }
});

test('parity: chat template renders and encodes as transformers does', () => {
  assert.ok(ref.chats.length >= 4);
  for (const c of ref.chats) {
    const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
    assert.equal(text, c.text);
    assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), c.ids);
  }
});
