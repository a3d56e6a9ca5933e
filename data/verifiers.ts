/**
 * Verifiers: one interface, used by the reasoning search (data/search.ts) and by RL.
 * A verifier judges a response (only the answer part) against a reference answer.
 *
 * - rule:  normalised answer match (case, punctuation, articles, whitespace, unicode),
 *          alias groups, option letter ↔ option text when options are given.
 * - llm:   an LLM judge over the chat client, replying True or False.
 * - model: a verifier model's P(True), correct when strictly above a threshold (0.4 in the recipe):
 *          a sequence classifier folder (HuatuoGPT-o1's medical_o1_verifier_3B: its label-1
 *          probability on the recipe's verifier input), or a causal LM judging the judge prompt,
 *          run by the built-in engine (data/verifier-engine.ts) or behind an OpenAI-compatible
 *          server (the logprobs of "True" and "False").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ChatClient, teacherConfig } from './chat-client.ts';
import { judgePrompt } from './prompts/verify.ts';
import { isSequenceClassifier } from '../engine/config.ts';
import { HUATUO_REWARD, HUATUO_VERIFIER_THRESHOLD, huatuoFormat, rewardFor } from './reward.ts';

export interface VerifyInput {
  response: string;
  reference: string;
  question?: string;
  /** Option letter → text, when the item is multiple choice: lets a letter match its text. */
  options?: Record<string, string>;
}

export interface Verdict {
  correct: boolean;
  /** 1/0 for rule and llm verifiers; P(True) for the model verifier. */
  score: number;
  reason: string;
}

export interface Verifier {
  name: string;
  verify(input: VerifyInput): Promise<Verdict>;
  /** Frees what the verifier holds (the model verifier's checkpoint); optional. */
  close?(): void;
}

// ---------------------------------------------------------------- the RL reward

/** The text after the last `## Final Response` heading (the whole text when there is none), trimmed. */
export function extractFinalResponse(text: string): string {
  const i = text.lastIndexOf('## Final Response');
  return (i < 0 ? text : text.slice(i + '## Final Response'.length)).trim();
}

/**
 * HuatuoGPT-o1's reward (data/reward.ts): 0 unless `## Final Response\n\n` and `## Thinking`
 * each appear exactly once; then 1 if correct, 0.1 if not.
 */
export function huatuoReward(text: string, correct: boolean): number {
  return rewardFor(huatuoFormat(text).formatted, correct, HUATUO_REWARD);
}

// ---------------------------------------------------------------- rule-based

/** Lower case, unicode-folded, no accents, punctuation or articles, single spaces. */
export function normalizeAnswer(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export class RuleVerifier implements Verifier {
  readonly name = 'rule';
  /** Each group lists names that count as the same answer, e.g. ["MI", "myocardial infarction"]. */
  constructor(private readonly aliases: string[][] = []) {}

  async verify({ response, reference, options }: VerifyInput): Promise<Verdict> {
    const accepted = this.acceptedAnswers(reference, options);
    const answer = response.trim();
    if (!answer) return { correct: false, score: 0, reason: 'empty response' };
    if (options) {
      const letter = chosenLetter(answer, options);
      if (letter) {
        const ok = accepted.has(normalizeAnswer(options[letter]));
        return { correct: ok, score: ok ? 1 : 0, reason: `chose option ${letter} (${options[letter]})${ok ? '' : ', not the reference'}` };
      }
    }
    const resp = normalizeAnswer(answer);
    if (accepted.has(resp)) return { correct: true, score: 1, reason: 'exact match after normalisation' };
    const found = [...accepted].find((a) => a && ` ${resp} `.includes(` ${a} `));
    if (found) {
      const others = options ? Object.values(options).map(normalizeAnswer).filter((o) => !accepted.has(o) && ` ${resp} `.includes(` ${o} `)) : [];
      if (others.length === 0) return { correct: true, score: 1, reason: `the response contains "${found}"` };
      return { correct: false, score: 0, reason: `the response names the reference and other options too (${others.join(', ')})` };
    }
    return { correct: false, score: 0, reason: 'no match with the reference or its aliases' };
  }

  private acceptedAnswers(reference: string, options?: Record<string, string>): Set<string> {
    let ref = reference.trim();
    // A reference given as an option letter stands for that option's text.
    const letter = ref.replace(/^\(?([A-Za-z])[).:]?$/, '$1').toUpperCase();
    if (options && letter.length === 1 && options[letter] !== undefined) ref = options[letter];
    const set = new Set([normalizeAnswer(ref)]);
    for (const group of this.aliases) {
      const norm = group.map(normalizeAnswer);
      if (norm.some((n) => set.has(n))) norm.forEach((n) => set.add(n));
    }
    return set;
  }
}

/** The option letter a response commits to, if it names one clearly. */
function chosenLetter(response: string, options: Record<string, string>): string | undefined {
  const letters = Object.keys(options).filter((k) => /^[A-Za-z]$/.test(k)).join('');
  if (!letters) return undefined;
  // Letters are matched case-sensitively: "the answer is a ..." names no option.
  const patterns = [
    new RegExp(`[Aa]nswer (?:is|would be):?\\s*\\(?([${letters}])\\)?(?!\\w)`),
    new RegExp(`^\\s*\\(?([${letters}])\\)?\\s*(?:[.:)]|$)`),
    new RegExp(`^\\s*[Oo]ption\\s+\\(?([${letters}])\\)?(?!\\w)`),
  ];
  for (const re of patterns) {
    const m = re.exec(response);
    if (m) {
      if (options[m[1]] !== undefined) return m[1];
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- LLM judge

export class LlmJudgeVerifier implements Verifier {
  readonly name = 'llm';
  constructor(private readonly client: ChatClient) {}

  async verify(input: VerifyInput): Promise<Verdict> {
    const reply = await this.client.chat([{ role: 'user', content: judgePrompt(input) }], { temperature: 0, maxTokens: 16 });
    const m = /\b(true|false)\b/i.exec(reply.text);
    if (!m) return { correct: false, score: 0, reason: `the judge replied neither True nor False: ${JSON.stringify(reply.text.slice(0, 80))}` };
    const correct = m[1].toLowerCase() === 'true';
    return { correct, score: correct ? 1 : 0, reason: `judge ${this.client.config.model} said ${m[1]}` };
  }
}

// ---------------------------------------------------------------- model verifier

/** Correct when P(True) is strictly above the threshold, as HuatuoGPT-o1's reward decides (P = 0.4 is wrong). */
export function thresholdVerdict(p: number, threshold: number): Verdict {
  const correct = p > threshold;
  return { correct, score: p, reason: `P(True) = ${p.toFixed(3)} ${correct ? '>' : '<='} threshold ${threshold}` };
}

/** Returns P(True) that the response matches the reference, given the judge prompt. */
export type TrueScorer = (prompt: string) => Promise<number>;

export class ModelVerifier implements Verifier {
  readonly name = 'model';
  constructor(private readonly scorer: TrueScorer, readonly threshold = HUATUO_VERIFIER_THRESHOLD, private readonly onClose?: () => void) {}

  async verify(input: VerifyInput): Promise<Verdict> {
    return thresholdVerdict(await this.scorer(judgePrompt(input)), this.threshold);
  }

  close(): void {
    this.onClose?.();
  }
}

/**
 * A scorer over a checkpoint folder run by the built-in engine. The model is loaded on the
 * first call and kept; calls made together share one forward pass (data/verifier-engine.ts,
 * imported only then, so the other verifiers never load the engine).
 */
export function engineScorer(dir: string): { scorer: TrueScorer; close(): void } {
  const lazy = lazyScorer((m) => m.EngineScorer.load(dir));
  return { scorer: async (prompt) => (await lazy.get()).score(prompt), close: lazy.close };
}

/** A scorer of data/verifier-engine.ts, loaded on the first get() and kept; close() frees it once (if it was loaded). */
function lazyScorer<S extends { close(): void }>(load: (m: typeof import('./verifier-engine.ts')) => Promise<S>): { get(): Promise<S>; close(): void } {
  let loading: Promise<S> | undefined;
  let closed = false;
  return {
    get: () => (loading ??= import('./verifier-engine.ts').then(load)),
    close() {
      if (closed) return;
      closed = true;
      loading?.then((s) => s.close(), () => undefined);
    },
  };
}

/** P(True) of a response (the final answer) against the reference. */
export type AnswerScorer = (input: Pick<VerifyInput, 'response' | 'reference'>) => Promise<number>;

/**
 * A sequence-classifier verifier (HuatuoGPT-o1's): the classifier reads the recipe's verifier
 * input (data/prompts/verify.ts huatuoVerifierInput), not the judge prompt; the question and
 * options are not part of it.
 */
export class ClassifierVerifier implements Verifier {
  readonly name = 'model';
  constructor(private readonly scorer: AnswerScorer, readonly threshold = HUATUO_VERIFIER_THRESHOLD, private readonly onClose?: () => void) {}

  async verify(input: VerifyInput): Promise<Verdict> {
    return thresholdVerdict(await this.scorer({ response: input.response, reference: input.reference }), this.threshold);
  }

  close(): void {
    this.onClose?.();
  }
}

/** A scorer over a sequence-classifier folder, loaded on the first call (see engineScorer). */
export function classifierScorer(dir: string): { scorer: AnswerScorer; close(): void } {
  const lazy = lazyScorer((m) => m.ClassifierScorer.load(dir));
  return {
    scorer: async ({ response, reference }) => {
      const s = await lazy.get();
      return s.score(s.inputText(response, reference));
    },
    close: lazy.close,
  };
}

/** A scorer asking an OpenAI-compatible server for the log-probabilities of "True" and "False" as the first token. */
export function logprobScorer(client: ChatClient, topLogprobs = 20): TrueScorer {
  return async (prompt) => {
    const reply = await client.chat([{ role: 'user', content: prompt }], { temperature: 0, maxTokens: 1, topLogprobs });
    const first = reply.logprobs?.[0];
    if (!first) throw new Error(`${client.config.baseUrl}: the reply has no logprobs; the server must support "logprobs": true with "top_logprobs"`);
    let pTrue = 0;
    let pFalse = 0;
    for (const t of [first, ...(first.top_logprobs ?? [])]) {
      const word = t.token.trim().toLowerCase();
      if (word === 'true') pTrue = Math.max(pTrue, Math.exp(t.logprob));
      if (word === 'false') pFalse = Math.max(pFalse, Math.exp(t.logprob));
    }
    if (pTrue + pFalse === 0) return 0;
    return pTrue / (pTrue + pFalse);
  };
}

// ---------------------------------------------------------------- factory

/** The pipeline's verifier params (dsl/kinds/common.ts Verifier). */
export type VerifierConfig =
  | { type: 'rule'; aliases?: Record<string, string[]> }
  | { type: 'llm'; base_url: string; model: string; api_key_env?: string; concurrency?: number; max_retries?: number; timeout?: number }
  | { type: 'model'; model?: string; base_url?: string; served_model?: string; threshold?: number; api_key_env?: string; concurrency?: number; max_retries?: number; timeout?: number };

/**
 * Builds a verifier from the pipeline's verifier params. `deps.client` replaces the judge
 * client built from the params; `deps.scorer` replaces the model verifier's scorer.
 */
export function makeVerifier(config: VerifierConfig, deps: { client?: ChatClient; scorer?: TrueScorer } = {}): Verifier {
  switch (config.type) {
    case 'rule':
      return new RuleVerifier(Object.entries(config.aliases ?? {}).map(([answer, names]) => [answer, ...names]));
    case 'llm':
      return new LlmJudgeVerifier(deps.client ?? new ChatClient(judgeConfig(config)));
    case 'model': {
      const threshold = config.threshold ?? HUATUO_VERIFIER_THRESHOLD;
      if (deps.scorer) return new ModelVerifier(deps.scorer, threshold);
      if (config.model !== undefined && config.base_url !== undefined) {
        throw new Error('verifier: give model (a checkpoint folder, scored in-process) or base_url (a server with logprobs), not both');
      }
      if (config.base_url !== undefined || deps.client) {
        const served = config.served_model ?? 'default';
        const client = deps.client ?? new ChatClient(judgeConfig({ ...config, base_url: config.base_url as string, model: served }));
        return new ModelVerifier(logprobScorer(client), threshold);
      }
      if (config.model === undefined) {
        throw new Error('verifier: give model (a checkpoint folder, scored in-process) or base_url (a server with logprobs)');
      }
      if (!existsSync(join(config.model, 'config.json'))) {
        throw new Error(`verifier.model: ${config.model} is not a checkpoint folder (no config.json): give a model folder the engine can load, or serve the verifier and set verifier.base_url with served_model`);
      }
      if (isSequenceClassifier(config.model)) {
        const clf = classifierScorer(config.model);
        return new ClassifierVerifier(clf.scorer, threshold, clf.close);
      }
      const engine = engineScorer(config.model);
      return new ModelVerifier(engine.scorer, threshold, engine.close);
    }
  }
}

function judgeConfig(c: { base_url: string; model: string; api_key_env?: string; concurrency?: number; max_retries?: number; timeout?: number }) {
  return teacherConfig({ ...c, temperature: 0 });
}
