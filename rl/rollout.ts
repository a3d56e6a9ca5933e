/**
 * Rollout: each prompt (the verifiable question as the only user turn, chat-templated,
 * with the generation prompt) is answered `numGenerations` times by sampling. Responses
 * end at an end-of-turn token (kept as the response's last token) or after `responseLength`
 * tokens. The samples come through the token-completions interface of evaluation/backend.ts:
 * the policy in-process (the default), or an OpenAI/SGLang-compatible server's /v1/completions
 * (`rollout:` of rl.grpo / rl.ppo). Both give the same rollout for the same seed and weights.
 */
import type { VerifiableItem } from '../data/formats.ts';
import type { CausalLM } from '../engine/model.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { TokenCompletion, TokenCompletionRequest, TokenCompletions } from '../evaluation/backend.ts';
import { completeOnEngine, engineCompletions, serverCompletions } from '../evaluation/completions.ts';
import { rolloutThread } from './rollout-thread.ts';

/** Prompt token ids of one problem, cut from the left to at most maxLen tokens. */
export function promptIds(tok: Tokenizer, item: VerifiableItem, maxLen: number): number[] {
  const ids = tok.encodeChat([{ role: 'user', content: item['Open-ended Verifiable Question'] }]);
  return ids.length > maxLen ? ids.slice(ids.length - maxLen) : ids;
}

export interface Rollout {
  /** Per response: which item of the batch it answers (its GRPO group). */
  group: number[];
  prompts: number[][];
  responses: number[][];
  /** Decoded responses, special tokens removed. */
  texts: string[];
  /** Whether the response ended by itself (end-of-turn token) rather than by length. */
  finished: boolean[];
}

export interface RolloutOptions {
  numGenerations: number;
  temperature: number;
  topP: number;
  responseLength: number;
  seed: number;
  /** Rows generated together (default: all). */
  batchSize?: number;
}

/**
 * The requests of a rollout: its rows (prompts × numGenerations, prompt-major) in slices of
 * `batchSize`, slice `start` seeded `seed + start`. Row k of a slice is choice k of its request
 * either way: a slice made of whole groups asks its prompts with n = numGenerations, another
 * one each row with n = 1.
 */
function requests(tok: Tokenizer, prompts: number[][], o: RolloutOptions): TokenCompletionRequest[] {
  const n = o.numGenerations;
  const total = prompts.length * n;
  const size = o.batchSize ?? total;
  const out: TokenCompletionRequest[] = [];
  for (let start = 0; start < total; start += size) {
    const end = Math.min(total, start + size);
    const whole = start % n === 0 && end % n === 0;
    out.push({
      prompts: whole ? prompts.slice(start / n, end / n) : Array.from({ length: end - start }, (_, i) => prompts[Math.floor((start + i) / n)]),
      n: whole ? n : 1,
      maxTokens: o.responseLength,
      temperature: o.temperature,
      topP: o.topP,
      seed: o.seed + start,
      stopTokenIds: tok.eosTokenIds,
    });
  }
  return out;
}

/**
 * A response as the in-process rollout has it: a choice that a stop token ended keeps that
 * token last (servers leave it out and name it: matched_stop, vLLM's stop_reason; one that
 * keeps it among the tokens is taken as it is).
 */
function responseOf(c: TokenCompletion, stopIds: Set<number>, k: number, where: string): number[] {
  if (c.finishReason !== 'stop') return c.tokens;
  const last = c.tokens.at(-1);
  if (last !== undefined && stopIds.has(last)) return c.tokens;
  const end = c.matchedStop ?? (stopIds.size === 1 ? [...stopIds][0] : undefined);
  if (end === undefined) throw new Error(`${where}: response ${k} stopped without naming the token that ended it (matched_stop or stop_reason)`);
  return [...c.tokens, end];
}

function assemble(tok: Tokenizer, prompts: number[][], o: RolloutOptions, replies: TokenCompletion[][], where: string): Rollout {
  const group: number[] = [];
  const rows: number[][] = [];
  prompts.forEach((p, i) => {
    for (let g = 0; g < o.numGenerations; g++) { group.push(i); rows.push(p); }
  });
  const choices = replies.flat();
  if (choices.length !== rows.length) throw new Error(`${where}: ${choices.length} responses for ${rows.length} rows`);
  const stopIds = new Set(tok.eosTokenIds);
  const responses = choices.map((c, k) => responseOf(c, stopIds, k, where));
  const finished = choices.map((c) => c.finishReason === 'stop');
  const texts = responses.map((ids) => tok.decode(ids, { skipSpecialTokens: true }));
  return { group, prompts: rows, responses, texts, finished };
}

/** The rollout of `prompts` by the policy in-process. */
export function rollout(model: CausalLM, tok: Tokenizer, prompts: number[][], o: RolloutOptions): Rollout {
  const replies = requests(tok, prompts, o).map((req) => completeOnEngine(model, req, tok.batchPadId));
  return assemble(tok, prompts, o, replies, 'the in-process engine');
}

/** The rollout of `prompts` through token completions (in-process or at a server): the same rollout for the same samples. */
export async function rolloutVia(source: TokenCompletions, tok: Tokenizer, prompts: number[][], o: RolloutOptions): Promise<Rollout> {
  const replies: TokenCompletion[][] = [];
  for (const req of requests(tok, prompts, o)) replies.push(await source.complete(req));
  return assemble(tok, prompts, o, replies, source.where);
}

/** rl.grpo / rl.ppo `rollout:`: an OpenAI/SGLang-compatible server that samples the rollouts instead of the policy in-process. */
export interface RolloutServer {
  base_url: string;
  model: string;
  api_key_env: string;
  /** What the server's weights are: the trainer never updates them (see the kinds' docs). */
  weights: 'fixed' | 'reloaded_from_checkpoints';
  timeout: number;
  max_retries: number;
}

/**
 * Where an RL step's rollouts come from: the policy being trained, in-process (no `rollout:`),
 * or the server `rollout:` names, with a warning that the trainer does not update its weights.
 * `size`: the rows of each rollout (prompts x generations) and the tokens the run will sample at
 * most, when known (rl/rollout-thread.ts).
 */
export function rolloutSource(
  server: RolloutServer | undefined, policy: CausalLM, tok: Tokenizer, warn: (message: string) => void, size: { rows?: number; tokens?: number } = {},
): TokenCompletions & { close?(): Promise<void> } {
  if (!server) {
    const local = engineCompletions(policy, { padTokenId: tok.batchPadId });
    const thread = rolloutThread(policy, { padTokenId: tok.batchPadId, ...size });
    if (!thread) return local;
    // A replica that cannot start or fails leaves the sampling to this thread, with a warning.
    let use: TokenCompletions = thread;
    return {
      get where() {
        return use === thread ? `${thread.where}${thread.backend() ? ` (${thread.backend()})` : ''}` : local.where;
      },
      async complete(req) {
        if (use === thread) {
          try {
            return await thread.complete(req);
          } catch (err) {
            warn(`${(err as Error).message}; rollouts are sampled in this process from now on`);
            use = local;
            await thread.close();
          }
        }
        return local.complete(req);
      },
      close: () => thread.close(),
    };
  }
  const source = serverCompletions({
    baseUrl: server.base_url, model: server.model, apiKeyEnv: server.api_key_env, timeoutMs: server.timeout * 1000, maxRetries: server.max_retries,
  });
  const what = server.weights === 'fixed'
    ? 'weights: fixed, so every iteration samples the same model and the rollouts after the first are off-policy (meant for one iteration, or to sample a checkpoint for pass@k)'
    : 'weights: reloaded_from_checkpoints, so the server must reload the policy from this step\'s checkpoints itself, and rollouts lag the trained policy by up to save_every iterations';
  warn(`rollouts are sampled by ${source.where}, not by the policy in this process: the trainer does not update that server's weights (${what})`);
  return source;
}
