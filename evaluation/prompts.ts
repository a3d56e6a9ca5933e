/**
 * The evaluation prompt for a multiple-choice item, word for word HuatuoGPT-o1's: the
 * instruction, the question, then one `A. text` line per option in the file's order. The
 * strict variant asks the model to end with `The answer is A.`, which makes the letter easy
 * to extract. With the completions API the prompt is rendered through the model's chat
 * template as HuatuoGPT-o1 renders it (a plain Jinja template: no block trimming, only
 * `messages`, `bos_token` and `add_generation_prompt`), and the output is post-processed as
 * it does (`</s>` removed, one leading space removed).
 */
import { parse, Template, tokenize } from '@huggingface/jinja';
import type { ChatMessage } from '../data/chat-client.ts';
import type { McqItem } from '../data/formats.ts';

const INSTRUCTION = 'Please answer the following multiple-choice question:';
const STRICT_INSTRUCTION =
  "Please answer the following multiple-choice questions. Please answer the following multiple-choice questions, ensuring your response concludes with the correct option in the format: 'The answer is A.'.";

/** Option letters in the item's order (the evaluation file's). */
export function optionLetters(options: Record<string, string>): string[] {
  return Object.keys(options);
}

export function formatOptions(options: Record<string, string>): string {
  return optionLetters(options).map((k) => `${k}. ${options[k]}`).join('\n');
}

export function mcqPrompt(item: Pick<McqItem, 'question' | 'options'>, strict = false): string {
  return `${strict ? STRICT_INSTRUCTION : INSTRUCTION}\n${item.question}\n${formatOptions(item.options)}`;
}

/** The chat request for an item: a single user turn. */
export function mcqMessages(item: Pick<McqItem, 'question' | 'options'>, strict = false): ChatMessage[] {
  return [{ role: 'user', content: mcqPrompt(item, strict) }];
}

/** A chat template compiled as a plain Jinja template (no trim_blocks / lstrip_blocks), as jinja2.Template compiles it. */
export class PlainChatTemplate {
  private readonly template: Template;
  constructor(source: string, private readonly bosToken: string | null) {
    this.template = new Template(source);
    // Template's constructor trims blocks as transformers does; HuatuoGPT-o1 renders with a bare jinja2.Template.
    this.template.parsed = parse(tokenize(source, {}));
  }

  /** One user turn, with the generation prompt. */
  render(userContent: string): string {
    return this.template.render({
      messages: [{ role: 'user', content: userContent }],
      ...(this.bosToken !== null ? { bos_token: this.bosToken } : {}),
      add_generation_prompt: true,
    });
  }
}

/** The output as HuatuoGPT-o1 keeps it: every `</s>` removed, then one leading space. */
export function postprocessOutput(text: string): string {
  const out = text.replaceAll('</s>', '');
  return out.startsWith(' ') ? out.slice(1) : out;
}
