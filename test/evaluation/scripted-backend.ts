/**
 * A deterministic stand-in model for the server and client tests: byte-level tokens
 * (id = UTF-8 byte, 256 = end of sequence) and a response chosen by a script from the
 * prompt text, emitted one byte per decode step. It lets the tests check the HTTP layer,
 * batching, stop strings and scoring exactly, and fast, without training a model; the
 * real engine is plugged in through evaluation/engine-backend.ts and tested separately.
 */
import type { Backend, ChatTurn, DecodeBatch, SamplingParams, SequenceStart, StepToken } from '../../evaluation/backend.ts';

export const EOS = 256;

export type Script = (prompt: string, sampling: SamplingParams) => string;

export interface ScriptedBackend extends Backend {
  /** Sizes of every `add` call (sequences admitted together). */
  admissions: number[];
}

export function scriptedBackend(script: Script, opts: { contextLength?: number; stepDelayMs?: number; name?: string } = {}): ScriptedBackend {
  const decode = (ids: number[]) => Buffer.from(ids.filter((i) => i < 256)).toString('utf8');
  const encode = (text: string) => [...Buffer.from(text, 'utf8')];
  const admissions: number[] = [];
  return {
    name: opts.name ?? 'scripted',
    path: '<scripted>',
    contextLength: opts.contextLength ?? 8192,
    vocabSize: 257,
    eosTokenIds: [EOS],
    admissions,
    encode,
    decode,
    encodeChat: (messages: ChatTurn[]) => encode(messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join('') + '<|assistant|>\n'),
    // Made-up but fixed log-probabilities of the prompt's tokens (echo with logprobs): -0.1, -0.2, -0.3, -0.1, ...
    async promptLogprobs(ids: number[], top: number) {
      return ids.slice(1).map((token, t) => ({
        logprob: -((t % 3) + 1) / 10,
        top: Array.from({ length: top }, (_, r) => ({ token: (token + r) % 256, logprob: -(r + 1) / 10 })),
      }));
    },
    newBatch(): DecodeBatch {
      const seqs = new Map<number, { out: number[]; pos: number }>();
      return {
        async add(list: SequenceStart[]) {
          admissions.push(list.length);
          const bad = list.find((s) => decode(s.promptIds).includes('FAIL-PREFILL'));
          if (bad) throw new Error(`prefill failed for sequence ${bad.id}`);
          for (const s of list) seqs.set(s.id, { out: encode(script(decode(s.promptIds), s.sampling)), pos: 0 });
        },
        remove(ids: number[]) {
          for (const id of ids) seqs.delete(id);
        },
        async step(): Promise<StepToken[]> {
          if (opts.stepDelayMs) await new Promise((r) => setTimeout(r, opts.stepDelayMs));
          return [...seqs].map(([id, s]) => {
            const token = s.pos < s.out.length ? s.out[s.pos] : EOS;
            s.pos++;
            return { id, token, logprob: -((s.pos % 5) + 1) / 10 };
          });
        },
      };
    },
  };
}
