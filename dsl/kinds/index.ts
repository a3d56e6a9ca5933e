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

export type { Runner, StepKind } from './types.ts';

const KINDS: StepKind[] = [knowledgeBase, constructVerifiable, searchReasoning, sft, grpo, ppo, evalSglang, command];
const BY_NAME = new Map(KINDS.map((k) => [k.name, k]));

export function getKind(name: string): StepKind | undefined {
  return BY_NAME.get(name);
}

export function allKinds(): StepKind[] {
  return [...KINDS];
}

/**
 * Adds a kind to this process's registry (for a program that embeds the compiler and the
 * runtime with kinds of its own, and for tests); a name already taken is refused.
 */
export function registerKind(kind: StepKind): void {
  if (BY_NAME.has(kind.name)) throw new Error(`step kind "${kind.name}" is already registered`);
  if (Object.keys(kind.runners).length === 0) throw new Error(`step kind "${kind.name}" declares no runner`);
  KINDS.push(kind);
  BY_NAME.set(kind.name, kind);
}
