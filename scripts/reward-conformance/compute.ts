/**
 * The expected values of a conformance case, computed by the TypeScript implementation
 * (data/reward.ts, rl/score.ts, data/verifiers.ts, data/verifier-engine.ts). Used by generate.ts to
 * write test/fixtures/reward-conformance.jsonl and by test/data/reward-conformance.test.ts to check it.
 * The llm and logprob cases go over real HTTP to a server on 127.0.0.1 that records the raw request
 * bodies and answers with the case's scripted reply.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { HUATUO_VERIFIER_THRESHOLD, huatuoFormat } from '../../data/reward.ts';
import { makeVerifier, normalizeAnswer, RuleVerifier, thresholdVerdict, type Verifier, type VerifyInput } from '../../data/verifiers.ts';
import { judgePrompt } from '../../data/prompts/verify.ts';
import { ClassifierScorer, EngineScorer } from '../../data/verifier-engine.ts';
import { score } from '../../rl/score.ts';
import type { Case } from './cases.ts';

export type Expected = Record<string, unknown>;

/** Holds the scripted server and the loaded models between cases; close() frees them. */
export class Computer {
  private server?: Server;
  private url = '';
  private reply: unknown = '';
  private bodies: string[] = [];
  private readonly models = new Map<string, Promise<EngineScorer | ClassifierScorer>>();

  constructor(private readonly root: string) {}

  async expected(c: Case): Promise<Expected> {
    switch (c.kind) {
      case 'reward': {
        const asked: VerifyInput[] = [];
        const inner: Verifier = c.verdict === undefined
          ? new RuleVerifier(c.aliases ?? [])
          : { name: 'fixed', verify: async () => ({ correct: c.verdict as boolean, score: c.verdict ? 1 : 0, reason: 'fixed' }) };
        const spy: Verifier = { name: inner.name, verify: (input) => { asked.push(input); return inner.verify(input); } };
        const item = { 'Open-ended Verifiable Question': c.question ?? '', 'Ground-True Answer': c.reference };
        const s = await score([c.response], [item], [0], spy, c.mapping);
        const f = huatuoFormat(c.response);
        return { formatted: s.formatted[0], finalResponse: f.finalResponse, judged: asked[0].response, correct: s.correct[0], reward: s.rewards[0] };
      }
      case 'rule': {
        const v = await new RuleVerifier(c.aliases ?? []).verify({ response: c.response, reference: c.reference, options: c.options && Object.fromEntries(c.options) });
        return { correct: v.correct, score: v.score, reason: v.reason, normalized: [normalizeAnswer(c.response), normalizeAnswer(c.reference)] };
      }
      case 'threshold': {
        const v = thresholdVerdict(c.p, c.threshold ?? HUATUO_VERIFIER_THRESHOLD);
        return { correct: v.correct, score: v.score, reason: v.reason };
      }
      case 'llm': {
        const v = makeVerifier({ type: 'llm', base_url: await this.serve(c.reply), model: c.judge, max_retries: 0 });
        const d = await v.verify(this.input(c));
        return { requestBody: this.bodies[0], correct: d.correct, score: d.score, reason: d.reason };
      }
      case 'logprob': {
        const v = makeVerifier({ type: 'model', base_url: await this.serve(c.reply), served_model: c.judge, max_retries: 0 });
        const d = await v.verify(this.input(c));
        return { requestBody: this.bodies[0], pTrue: d.score, correct: d.correct };
      }
      case 'classifier': {
        const key = `${c.model}#${c.maxLength ?? ''}`;
        if (!this.models.has(key)) this.models.set(key, ClassifierScorer.load(join(this.root, c.model), { maxLength: c.maxLength }));
        const s = (await this.models.get(key)) as ClassifierScorer;
        const input = s.inputText(c.response, c.reference);
        const [p] = s.scoreBatch([input]);
        return { input, ids: s.inputIds(input), pTrue: p, correct: thresholdVerdict(p, c.threshold ?? HUATUO_VERIFIER_THRESHOLD).correct };
      }
      case 'causal_lm': {
        if (!this.models.has(c.model)) this.models.set(c.model, EngineScorer.load(join(this.root, c.model)));
        const s = (await this.models.get(c.model)) as EngineScorer;
        const prompt = judgePrompt(this.input(c));
        const [p] = s.scoreBatch([prompt]);
        return { prompt, ids: s.promptIds(prompt), answerIds: s.answerIds, pTrue: p, correct: thresholdVerdict(p, c.threshold ?? HUATUO_VERIFIER_THRESHOLD).correct };
      }
    }
  }

  async close(): Promise<void> {
    for (const m of this.models.values()) (await m).close();
    this.models.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private input(c: { response: string; reference: string; question?: string; options?: [string, string][] }): VerifyInput {
    return { response: c.response, reference: c.reference, question: c.question, options: c.options && Object.fromEntries(c.options) };
  }

  /** Starts the server once; the next request gets `reply`; returns the base URL. */
  private async serve(reply: unknown): Promise<string> {
    this.reply = reply;
    this.bodies = [];
    if (!this.server) {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          this.bodies.push(Buffer.concat(chunks).toString('utf8'));
          const r = this.reply as string | { text: string; logprobs?: unknown };
          const text = typeof r === 'string' ? r : r.text;
          const logprobs = typeof r === 'string' ? null : { content: r.logprobs };
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs }], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.server = server;
      this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    }
    return this.url;
  }
}
