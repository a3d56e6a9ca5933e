/**
 * A Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json, optional
 * generation_config.json) loaded through @huggingface/tokenizers, with the chat template
 * rendered by @huggingface/jinja — the same files transformers, SGLang and vLLM read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { readJsonFile } from '../common/fs.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Let the tokenizer's post-processor add its special tokens (BOS/EOS) — default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Extra variables for the template (e.g. enable_thinking). */
  extra?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;

/** Special tokens in tokenizer_config.json are a string or an AddedToken object `{content: ...}`. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return null;
}

function idList(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

export class Tokenizer {
  readonly source: string;
  readonly tokenizerJson: Json;
  readonly config: Json;
  readonly chatTemplate: string | null;
  readonly bosTokenId: number | null;
  readonly padTokenId: number | null;
  /** The main end-of-sequence id (tokenizer_config's eos_token). */
  readonly eosTokenId: number | null;
  /** Every id that ends generation: eos_token plus generation_config.json's eos_token_id list. */
  readonly eosTokenIds: number[];
  /** One past the largest id, counting added tokens: the smallest embedding table that fits. */
  readonly vocabSize: number;
  private readonly hf: HfTokenizer;
  private template: Template | null = null;

  /** Loads a model or tokenizer folder. */
  static load(dir: string): Tokenizer {
    const tokPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokPath)) {
      throw new Error(`${tokPath}: file not found — a tokenizer folder needs tokenizer.json ` +
        `(make one with \`doctor-agent tokenizer train\`, or copy it from the Hugging Face model)`);
    }
    const tokenizerJson = readJsonFile<Json>(tokPath);
    const cfgPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(cfgPath) ? readJsonFile<Json>(cfgPath) : {};
    // transformers 5 may keep the template in its own file next to tokenizer_config.json.
    const jinjaPath = join(dir, 'chat_template.jinja');
    if (config.chat_template === undefined && existsSync(jinjaPath)) config.chat_template = readFileSync(jinjaPath, 'utf8');
    const genPath = join(dir, 'generation_config.json');
    const generation = existsSync(genPath) ? readJsonFile<Json>(genPath) : {};
    return new Tokenizer(tokenizerJson, config, generation, dir);
  }

  constructor(tokenizerJson: Json, config: Json = {}, generationConfig: Json = {}, source = '<memory>') {
    this.source = source;
    const where = join(source, 'tokenizer.json');
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !tokenizerJson.model || typeof tokenizerJson.model !== 'object') {
      throw new Error(`${where}: not a tokenizer.json (no "model" section) — expected the file written by Hugging Face tokenizers`);
    }
    for (const key of SPECIAL_KEYS) {
      const value = config[key];
      if (value !== undefined && value !== null && tokenText(value) === null) {
        throw new Error(`${join(source, 'tokenizer_config.json')}: "${key}" must be a string or {"content": ...}, got ${JSON.stringify(value)}`);
      }
    }
    try {
      this.hf = new HfTokenizer(tokenizerJson, config);
    } catch (err) {
      throw new Error(`${where}: cannot build the tokenizer: ${(err as Error).message}`);
    }
    this.tokenizerJson = tokenizerJson;
    this.config = config;

    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (key: string): number | null => {
      const text = tokenText(config[key]);
      if (text === null) return null;
      const id = this.hf.token_to_id(text);
      if (id === undefined) {
        throw new Error(`${join(source, 'tokenizer_config.json')}: ${key} ${JSON.stringify(text)} is not in tokenizer.json's vocabulary`);
      }
      return id;
    };
    this.bosTokenId = idOf('bos_token');
    this.padTokenId = idOf('pad_token');
    this.eosTokenId = idOf('eos_token');
    const eos = new Set<number>(this.eosTokenId === null ? [] : [this.eosTokenId]);
    for (const id of idList(generationConfig.eos_token_id)) eos.add(id);
    this.eosTokenIds = [...eos];
    if (this.eosTokenId === null && this.eosTokenIds.length > 0) this.eosTokenId = this.eosTokenIds[0];

    const tpl = config.chat_template;
    if (typeof tpl === 'string') this.chatTemplate = tpl;
    else if (Array.isArray(tpl)) {
      // Several named templates: transformers uses the one named "default".
      const named = tpl.find((t) => t && (t as Json).name === 'default') as Json | undefined;
      this.chatTemplate = typeof named?.template === 'string' ? named.template : null;
    } else this.chatTemplate = null;
  }

  /** The id that pads batches: pad_token, else the main end-of-sequence id, else 0 (padding is masked out either way). */
  get batchPadId(): number {
    return this.padTokenId ?? this.eosTokenId ?? 0;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The byte-level token strings of a text (e.g. "Ġheart"). */
  tokenize(text: string): string[] {
    return this.hf.tokenize(text);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /**
   * Token ids of a conversation for the model to answer: rendered with the generation prompt and
   * encoded without the post-processor's special tokens (the template already writes them).
   */
  encodeChat(messages: ChatMessage[]): number[] {
    return this.encode(this.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  }

  /** Renders the conversation with tokenizer_config.json's chat_template (text, not ids). */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new Error(`${join(this.source, 'tokenizer_config.json')}: no "chat_template" (nor chat_template.jinja) — add one ` +
        `(e.g. the ChatML template written by \`doctor-agent tokenizer train\`)`);
    }
    if (this.template === null) {
      try {
        this.template = new Template(this.chatTemplate);
      } catch (err) {
        throw new Error(`${join(this.source, 'tokenizer_config.json')}: chat_template does not parse: ${(err as Error).message}`);
      }
    }
    const special: Record<string, string> = {};
    for (const key of SPECIAL_KEYS) {
      const text = tokenText(this.config[key]);
      if (text !== null) special[key] = text;
    }
    return this.template.render({
      ...special,
      ...options.extra,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  }
}
