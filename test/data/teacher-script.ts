/**
 * Scripted teacher replies for the search and construction tests, keyed on which of the
 * project's prompts arrived (data/prompts/*). Stands in for GPT-4o, unreachable here.
 */
import type { Script, Scripted, SeenRequest } from '../helpers/openai-server.ts';

export type PromptKind = 'initial' | 'strategy' | 'hint' | 'natural' | 'response' | 'judge' | 'filter' | 'rewrite' | 'unknown';

export function kindOf(prompt: string): PromptKind {
  if (prompt.startsWith('Work through the medical question')) return 'initial';
  if (prompt.includes('Continue the reasoning with the strategy')) return 'strategy';
  if (prompt.includes('For your eyes only')) return 'hint';
  if (prompt.includes('Rewrite the steps as one natural inner monologue')) return 'natural';
  if (prompt.startsWith('A clinician has thought through')) return 'response';
  if (prompt.startsWith('You check answers')) return 'judge';
  if (prompt.startsWith('You screen multiple-choice')) return 'filter';
  if (prompt.startsWith('Turn the multiple-choice')) return 'rewrite';
  return 'unknown';
}

export function questionOf(prompt: string): string {
  return /<question>\n([\s\S]*?)\n<\/question>/.exec(prompt)?.[1] ?? '';
}

export function strategyOf(prompt: string): string | undefined {
  return /with the strategy "([^"]+)"/.exec(prompt)?.[1];
}

/** A chain-of-thought reply ending in `conclusion`. */
export function cotReply(conclusion: string, lead = 'Inner Thinking'): string {
  return JSON.stringify({
    CoT: [
      { action: lead, title: 'Look at the findings', content: `Thinking about it, maybe ${conclusion}.` },
      { action: 'Final Conclusion', content: conclusion },
      { action: 'Verification', content: 'Checked against the question.' },
    ],
  });
}

/**
 * A teacher for the search: `conclude` gives the Final Conclusion of each chain-of-thought
 * request (`n` counts them per question, from 0); the rewrite prompts get fixed answers.
 * `intercept` may answer a request first (errors, malformed text).
 */
export function searchTeacher(
  conclude: (question: string, kind: PromptKind, n: number, req: SeenRequest) => string,
  intercept?: (req: SeenRequest, kind: PromptKind) => Scripted | undefined,
): Script {
  const counts = new Map<string, number>();
  return (req) => {
    const kind = kindOf(req.prompt);
    const hit = intercept?.(req, kind);
    if (hit !== undefined) return hit;
    const q = questionOf(req.prompt);
    if (kind === 'natural') return JSON.stringify({ NaturalReasoning: `Hmm, let me think about "${q}". Wait, that does not fit... so it must be this.` });
    if (kind === 'response') return `Final answer for "${q}".`;
    const n = counts.get(q) ?? 0;
    counts.set(q, n + 1);
    return cotReply(conclude(q, kind, n, req), kind === 'strategy' ? strategyOf(req.prompt) : undefined);
  };
}
