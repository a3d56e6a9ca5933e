/**
 * Scoring: the verifier judges only the text after "## Final Response" against the
 * reference answer; HuatuoGPT-o1's reward mapping turns the verdict into a number —
 * `malformed` unless "## Thinking" and "## Final Response" each appear exactly once,
 * else `correct` or `wrong`.
 */
import { extractFinalResponse, huatuoReward, type Verifier } from '../data/verifiers.ts';
import type { VerifiableItem } from '../data/formats.ts';
import type { Reward } from '../dsl/kinds/common.ts';

export interface Scores {
  rewards: number[];
  correct: boolean[];
  formatted: boolean[];
}

export const DEFAULT_REWARD: Reward = { correct: 1.0, wrong: 0.1, malformed: 0.0 };

/** The reward of one response given the verdict (with the default mapping, exactly huatuoReward). */
export function rewardOf(text: string, correct: boolean, mapping: Reward = DEFAULT_REWARD): number {
  // huatuoReward is 0 exactly when the format is broken.
  if (huatuoReward(text, true) === 0) return mapping.malformed;
  return correct ? mapping.correct : mapping.wrong;
}

/** Scores each response against the item of its group. */
export async function score(texts: string[], items: VerifiableItem[], group: number[], verifier: Verifier, mapping: Reward = DEFAULT_REWARD): Promise<Scores> {
  const verdicts = await Promise.all(texts.map((text, i) => {
    const item = items[group[i]];
    return verifier.verify({ response: extractFinalResponse(text), reference: item['Ground-True Answer'], question: item['Open-ended Verifiable Question'] });
  }));
  const correct = verdicts.map((v) => v.correct);
  return {
    rewards: texts.map((t, i) => rewardOf(t, correct[i], mapping)),
    correct,
    formatted: texts.map((t) => huatuoReward(t, true) > 0),
  };
}
