/**
 * Scoring, as HuatuoGPT-o1's RL reward (data/reward.ts): a response is well formed when
 * `## Final Response\n\n` and `## Thinking` each appear exactly once in its decoded text; the
 * verifier then judges the stripped text after `## Final Response\n\n` against the reference
 * answer, and the mapping gives `correct` or `wrong`. A malformed response gets `malformed`
 * whatever the verifier says; it is still judged (on the text after its last `## Final
 * Response`, see extractFinalResponse) so that the `correct` flags, the iteration's accuracy,
 * count answers that are right but badly formatted. (The recipe scores malformed responses
 * too, with "I do not know the answer." as the response, and discards the result.)
 */
import { extractFinalResponse, type Verifier } from '../data/verifiers.ts';
import type { VerifiableItem } from '../data/formats.ts';
import { HUATUO_REWARD, huatuoFormat, rewardFor, type RewardMapping } from '../data/reward.ts';

export interface Scores {
  rewards: number[];
  correct: boolean[];
  formatted: boolean[];
}

export const DEFAULT_REWARD: RewardMapping = HUATUO_REWARD;

/** The reward of one response given the verdict (with the default mapping, exactly huatuoReward). */
export function rewardOf(text: string, correct: boolean, mapping: RewardMapping = DEFAULT_REWARD): number {
  return rewardFor(huatuoFormat(text).formatted, correct, mapping);
}

/** Scores each response against the item of its group. */
export async function score(texts: string[], items: VerifiableItem[], group: number[], verifier: Verifier, mapping: RewardMapping = DEFAULT_REWARD): Promise<Scores> {
  const formats = texts.map(huatuoFormat);
  const correct = await Promise.all(texts.map(async (_, i) => {
    const f = formats[i];
    const item = items[group[i]];
    const response = f.finalResponse ?? extractFinalResponse(texts[i]);
    const v = await verifier.verify({ response, reference: item['Ground-True Answer'], question: item['Open-ended Verifiable Question'] });
    return v.correct;
  }));
  return {
    rewards: formats.map((f, i) => rewardFor(f.formatted, correct[i], mapping)),
    correct,
    formatted: formats.map((f) => f.formatted),
  };
}
