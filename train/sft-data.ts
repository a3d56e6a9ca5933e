/**
 * SFT examples: each item becomes the chat-templated conversation
 *   user: Question    assistant: "## Thinking\n\n{Complex_CoT}\n\n## Final Response\n\n{Response}"
 * as token ids with a loss mask that is 1 exactly on the assistant turn's tokens (after the
 * generation prompt, through the end-of-turn token) and 0 on everything before it.
 * The prompt and the assistant turn are encoded separately and joined, so the mask
 * boundary is exact at the token level.
 */
import { sftTarget, type SftItem } from '../data/formats.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';

export interface Example {
  ids: number[];
  /** 1 where the token is scored (assistant turn), 0 elsewhere. */
  mask: number[];
}

/** The conversation text split at the start of the assistant's answer: [prompt, completion]. */
export function renderSft(tok: Tokenizer, item: Pick<SftItem, 'Question' | 'Complex_CoT' | 'Response'>): [string, string] {
  const user = { role: 'user', content: item.Question };
  const prompt = tok.applyChatTemplate([user], { addGenerationPrompt: true });
  const full = tok.applyChatTemplate([user, { role: 'assistant', content: sftTarget(item) }]);
  if (!full.startsWith(prompt)) {
    throw new Error(`${tok.source}: the chat template renders the user turn differently with and without the assistant's reply, ` +
      'so the assistant turn cannot be located; use a template whose generation prompt is a prefix of the full conversation');
  }
  return [prompt, full.slice(prompt.length)];
}

/** Token ids and loss mask of one item, cut to maxLen tokens; null when nothing of the answer fits. */
export function encodeSft(tok: Tokenizer, item: SftItem, maxLen: number): Example | null {
  const [prompt, completion] = renderSft(tok, item);
  const p = tok.encode(prompt, { addSpecialTokens: false });
  const c = tok.encode(completion, { addSpecialTokens: false });
  const ids = [...p, ...c].slice(0, maxLen);
  const mask = [...p.map(() => 0), ...c.map(() => 1)].slice(0, maxLen);
  return mask.includes(1) ? { ids, mask } : null;
}

/** Right-padded batch (pad tokens masked out), as long as its longest example. */
export function padBatch(examples: Example[], padId: number): { ids: number[][]; mask: number[][] } {
  const T = Math.max(...examples.map((e) => e.ids.length));
  return {
    ids: examples.map((e) => [...e.ids, ...new Array<number>(T - e.ids.length).fill(padId)]),
    mask: examples.map((e) => [...e.mask, ...new Array<number>(T - e.mask.length).fill(0)]),
  };
}
