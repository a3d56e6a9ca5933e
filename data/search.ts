/**
 * Verifier-guided reasoning search (HuatuoGPT-o1, stage 2), for one verifiable problem:
 *
 *   attempt 1..maxAttempts (each a fresh chain):
 *     the teacher writes a chain of thought as JSON steps (Inner Thinking..., Final Conclusion, Verification)
 *     the verifier judges the Final Conclusion only, against the ground truth
 *     while wrong and depth < maxDepth: draw a strategy (seeded; never Backtracking first),
 *       the teacher extends the chain with it, the verifier judges the new conclusion
 *   never right: drop the problem, or (onFailure "hint") extend the last chain knowing the answer
 *   found: rewrite the chain into a natural monologue (Complex_CoT), then a Response
 *
 * Every round is kept in the trace. Chat errors (server down after retries) propagate:
 * the problem is unfinished, not failed, and runs again on resume.
 */
import type { Rng } from '../common/rng.ts';
import { addUsage, emptyUsage, MalformedReplyError, type ChatClient, type ChatUsage } from './chat-client.ts';
import type { VerifiableItem } from './formats.ts';
import { hintPrompt, initialPrompt, naturalPrompt, responsePrompt, strategyPrompt, STRATEGIES, type CotStep, type Strategy } from './prompts/search.ts';
import type { Verdict, Verifier } from './verifiers.ts';

export { STRATEGIES, type Strategy, type CotStep };

export interface SearchConfig {
  maxDepth: number;
  maxAttempts: number;
  strategies: readonly Strategy[];
  onFailure: 'drop' | 'hint';
  /** Times a malformed (non-JSON) reply is asked again. */
  parseRetries?: number;
}

export interface SearchRound {
  attempt: number;
  depth: number;
  kind: 'initial' | 'strategy' | 'hint';
  strategy?: Strategy;
  steps: CotStep[];
  conclusion?: string;
  verdict?: Verdict;
  error?: string;
}

export interface SearchTrace {
  id: string;
  question: string;
  answer: string;
  status: 'found' | 'hinted' | 'failed';
  rounds: SearchRound[];
  /** The chain that reached the answer. */
  chain?: CotStep[];
  sft?: { Question: string; Complex_CoT: string; Response: string; hinted?: true };
  error?: string;
  usage: ChatUsage;
}

export const DEFAULT_SEARCH: SearchConfig = { maxDepth: 3, maxAttempts: 3, strategies: STRATEGIES, onFailure: 'drop' };

/** Draws the next strategy: any of `allowed`, but Backtracking never as the first extension of a chain. */
export function drawStrategy(rng: Rng, allowed: readonly Strategy[], depth: number): Strategy {
  const pool = depth === 1 ? allowed.filter((s) => s !== 'Backtracking') : allowed;
  if (pool.length === 0) throw new Error('strategies: Backtracking cannot be the first strategy; list at least one other strategy');
  return rng.pick(pool);
}

export async function searchOne(
  id: string,
  item: VerifiableItem & { options?: Record<string, string> },
  deps: { teacher: ChatClient; verifier: Verifier; rng: Rng; config: SearchConfig; signal?: AbortSignal },
): Promise<SearchTrace> {
  const { teacher, verifier, rng, config } = deps;
  const question = item['Open-ended Verifiable Question'];
  const answer = item['Ground-True Answer'];
  const usage = emptyUsage();
  const trace: SearchTrace = { id, question, answer, status: 'failed', rounds: [], usage };
  const ask = (prompt: string) => teacher.chatJson(prompt, checkSteps, { usage, signal: deps.signal, parseRetries: config.parseRetries });
  const judge = (steps: CotStep[]) => verifier.verify({ response: conclusionOf(steps), reference: answer, question, options: item.options });

  let lastChain: CotStep[] = [];
  search: for (let attempt = 1; attempt <= config.maxAttempts; attempt++) {
    let chain: CotStep[] = [];
    for (let depth = 0; depth <= config.maxDepth; depth++) {
      const strategy = depth === 0 ? undefined : drawStrategy(rng, config.strategies, depth);
      const round: SearchRound = { attempt, depth, kind: depth === 0 ? 'initial' : 'strategy', strategy, steps: [] };
      trace.rounds.push(round);
      try {
        round.steps = await ask(strategy ? strategyPrompt(question, chain, strategy) : initialPrompt(question));
      } catch (err) {
        if (!(err instanceof MalformedReplyError)) throw err;
        round.error = (err as Error).message;
        break; // this chain cannot go on; start a fresh one
      }
      chain = [...chain, ...round.steps];
      lastChain = chain;
      round.conclusion = conclusionOf(round.steps);
      round.verdict = await judge(round.steps);
      if (round.verdict.correct) {
        trace.status = 'found';
        trace.chain = chain;
        break search;
      }
    }
  }

  if (trace.status !== 'found' && config.onFailure === 'hint') {
    const round: SearchRound = { attempt: config.maxAttempts, depth: config.maxDepth + 1, kind: 'hint', steps: [] };
    trace.rounds.push(round);
    try {
      round.steps = await ask(hintPrompt(question, lastChain, answer));
      round.conclusion = conclusionOf(round.steps);
      round.verdict = await judge(round.steps);
      if (round.verdict.correct) {
        trace.status = 'hinted';
        trace.chain = [...lastChain, ...round.steps];
      }
    } catch (err) {
      if (!(err instanceof MalformedReplyError)) throw err;
      round.error = (err as Error).message;
    }
  }
  if (!trace.chain) return trace;

  try {
    const natural = await teacher.chatJson(naturalPrompt(question, trace.chain), checkNatural, { usage, signal: deps.signal, parseRetries: config.parseRetries });
    const reply = await teacher.chat([{ role: 'user', content: responsePrompt(question, natural) }], { signal: deps.signal });
    addUsage(usage, reply);
    if (!reply.text.trim()) throw new MalformedReplyError('the teacher gave an empty Response');
    trace.sft = { Question: question, Complex_CoT: natural, Response: reply.text.trim() };
    if (trace.status === 'hinted') trace.sft.hinted = true;
  } catch (err) {
    if (!(err instanceof MalformedReplyError)) throw err;
    trace.error = `rewrite failed: ${(err as Error).message}`;
    trace.status = 'failed';
  }
  return trace;
}

/** The content of the last Final Conclusion step. */
export function conclusionOf(steps: CotStep[]): string {
  for (let i = steps.length - 1; i >= 0; i--) if (/final conclusion/i.test(steps[i].action)) return steps[i].content;
  return '';
}

/** Validates a chain-of-thought reply: {"CoT": [...]} or a bare list of steps, ending in a Final Conclusion. */
export function checkSteps(value: unknown): CotStep[] {
  const list = Array.isArray(value) ? value : (value as { CoT?: unknown })?.CoT;
  if (!Array.isArray(list) || list.length === 0) throw new Error('expected {"CoT": [steps...]}');
  const steps = list.map((s, i) => {
    const step = s as Partial<CotStep>;
    if (typeof step?.action !== 'string' || typeof step.content !== 'string') throw new Error(`step ${i + 1} needs string "action" and "content"`);
    return { action: step.action, ...(typeof step.title === 'string' ? { title: step.title } : {}), content: step.content };
  });
  if (!conclusionOf(steps).trim()) throw new Error('no "Final Conclusion" step');
  return steps;
}

function checkNatural(value: unknown): string {
  const text = (value as { NaturalReasoning?: unknown })?.NaturalReasoning;
  if (typeof text !== 'string' || !text.trim()) throw new Error('missing "NaturalReasoning"');
  return text.trim();
}
