/**
 * Trains a byte-level BPE tokenizer (the Qwen2 / GPT-2 family) and writes it as a standard
 * Hugging Face tokenizer folder: tokenizer.json (BPE model, byte-level pre-tokenizer and
 * decoder, merges) and tokenizer_config.json (special tokens and a ChatML chat template).
 *
 * Pre-tokenization during training runs through the same @huggingface/tokenizers components
 * the written file declares, so training sees exactly the pieces encoding will see.
 */
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { writeJsonAtomic } from '../common/fs.ts';
import { learnBpe } from './tokenizer-bpe.ts';

/** Qwen2's pre-tokenization pattern: contractions, letter runs, single digits, punctuation runs, newlines, spaces. */
export const SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const DEFAULT_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** ChatML, as Qwen2 models use it. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

const NORMALIZER = { type: 'NFC' };

const PRE_TOKENIZER = {
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  ],
};

/**
 * The byte-level alphabet: byte b is written as one printable character. Printable Latin-1
 * bytes stand for themselves; the other 68 bytes take the code points from U+0100 upward in
 * byte order. Returned in byte order (index = byte value).
 */
export function byteAlphabet(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 0x100;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : next++));
  return out;
}

export interface TrainOptions {
  vocabSize: number;
  specialTokens?: string[];
  minFrequency?: number;
  /** The largest context the tokenizer is meant for (tokenizer_config's model_max_length). */
  modelMaxLength?: number;
  onProgress?: (merges: number, tokens: number) => void;
}

export interface TrainedTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Distinct pre-tokenized words seen, and their total count. */
  stats: { words: number; uniqueWords: number; merges: number; vocabSize: number };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One stage of the pre-tokenizer, built by the library from its config entry. */
function libraryPreTokenizer(config: object) {
  const skeleton = {
    normalizer: null, pre_tokenizer: config, post_processor: null, decoder: null,
    model: { type: 'BPE', vocab: {}, merges: [] }, added_tokens: [],
  };
  return new HfTokenizer(skeleton, {}).pre_tokenizer!;
}

/**
 * Counts the byte-level words of the texts (NFC-normalized, literal special tokens skipped).
 * The split stage runs over all text; the byte-level stage, which maps each piece on its own,
 * runs once per distinct piece.
 */
export function countWords(texts: Iterable<string>, specialTokens: string[]): { counts: Map<string, number>; total: number } {
  const [splitConfig, byteLevelConfig] = PRE_TOKENIZER.pretokenizers;
  const split = libraryPreTokenizer(splitConfig);
  const byteLevel = libraryPreTokenizer(byteLevelConfig);
  const specials = specialTokens.length > 0 ? new RegExp(specialTokens.map(escapeRegExp).join('|'), 'g') : null;
  const pieces = new Map<string, number>();
  let total = 0;
  for (const raw of texts) {
    const text = raw.normalize('NFC');
    for (const part of specials ? text.split(specials) : [text]) {
      if (part.length === 0) continue;
      for (const piece of split.pre_tokenize_text(part)) {
        pieces.set(piece, (pieces.get(piece) ?? 0) + 1);
        total++;
      }
    }
  }
  const counts = new Map<string, number>();
  for (const [piece, n] of pieces) {
    for (const word of byteLevel.pre_tokenize_text(piece)) counts.set(word, (counts.get(word) ?? 0) + n);
  }
  return { counts, total };
}

export function trainTokenizer(texts: Iterable<string>, options: TrainOptions): TrainedTokenizer {
  const specials = options.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  if (new Set(specials).size !== specials.length) throw new Error(`special tokens repeat: ${specials.join(', ')}`);
  const alphabet = byteAlphabet();
  const minVocab = alphabet.length + specials.length;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < minVocab) {
    throw new Error(`--vocab-size must be an integer of at least ${minVocab} (256 bytes + ${specials.length} special tokens), got ${options.vocabSize}`);
  }
  const { counts, total } = countWords(texts, specials);
  const bpe = learnBpe(alphabet, counts, {
    vocabSize: options.vocabSize - specials.length,
    minFrequency: options.minFrequency ?? 2,
    onProgress: options.onProgress,
  });

  const vocab: Record<string, number> = {};
  bpe.tokens.forEach((t, i) => (vocab[t] = i));
  const added = specials.map((content, i) => ({
    id: bpe.tokens.length + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: NORMALIZER,
    pre_tokenizer: PRE_TOKENIZER,
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges.map(([a, b]) => `${a} ${b}`),
    },
  };

  const has = (t: string) => specials.includes(t);
  const addedDecoder: Record<string, unknown> = {};
  for (const { id, ...rest } of added) addedDecoder[String(id)] = rest;
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedDecoder,
    additional_special_tokens: specials.filter((t) => t === '<|im_start|>' || t === '<|im_end|>'),
    bos_token: null,
    eos_token: has('<|im_end|>') ? '<|im_end|>' : (specials[0] ?? null),
    pad_token: has('<|endoftext|>') ? '<|endoftext|>' : null,
    unk_token: null,
    chat_template: has('<|im_start|>') && has('<|im_end|>') ? CHATML_TEMPLATE : undefined,
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    model_max_length: options.modelMaxLength ?? 32768,
    split_special_tokens: false,
  };
  if (tokenizerConfig.chat_template === undefined) delete tokenizerConfig.chat_template;

  return {
    tokenizerJson,
    tokenizerConfig,
    stats: { words: total, uniqueWords: counts.size, merges: bpe.merges.length, vocabSize: bpe.tokens.length + specials.length },
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (each atomically). */
export function saveTrainedTokenizer(trained: TrainedTokenizer, dir: string): void {
  writeJsonAtomic(join(dir, 'tokenizer.json'), trained.tokenizerJson);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), trained.tokenizerConfig);
}
