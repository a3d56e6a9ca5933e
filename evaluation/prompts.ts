/**
 * The evaluation prompt for a multiple-choice item: the instruction, the question,
 * then one `A. text` line per option. The strict variant also asks the model to end
 * with `The answer is X.`, which makes the letter easy to extract.
 */
import type { ChatMessage } from '../data/chat-client.ts';
import type { McqItem } from '../data/formats.ts';

const INSTRUCTION = 'Please answer the following multiple-choice question:';
const STRICT_INSTRUCTION =
  'Please answer the following multiple-choice question, and end your response with the letter of the correct option in the form "The answer is X.":';

/** Option letters in order (A, B, C, ...), as the item spells them. */
export function optionLetters(options: Record<string, string>): string[] {
  return Object.keys(options).sort();
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
