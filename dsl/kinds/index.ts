/** The step-kind registry: every kind `uses:` may name. */
import { command } from './command.ts';
import { constructVerifiable } from './construct-verifiable.ts';
import { evalSglang } from './eval-sglang.ts';
import { grpo } from './grpo.ts';
import { knowledgeBase } from './knowledge-base.ts';
import { ppo } from './ppo.ts';
import { searchReasoning } from './search-reasoning.ts';
import { sft } from './sft.ts';
import type { StepKind } from './types.ts';

export type { StepKind } from './types.ts';

const KINDS: StepKind[] = [knowledgeBase, constructVerifiable, searchReasoning, sft, grpo, ppo, evalSglang, command];
const BY_NAME = new Map(KINDS.map((k) => [k.name, k]));

export function getKind(name: string): StepKind | undefined {
  return BY_NAME.get(name);
}

export function allKinds(): StepKind[] {
  return [...KINDS];
}
