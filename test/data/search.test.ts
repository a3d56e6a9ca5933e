// The teacher (GPT-4o in the recipe) cannot be reached from the test machine: a scripted
// OpenAI-compatible server on 127.0.0.1 plays it, over real HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/rng.ts';
import { ChatClient } from '../../data/chat-client.ts';
import { DEFAULT_SEARCH, drawStrategy, searchOne, STRATEGIES, type SearchConfig } from '../../data/search.ts';
import { RuleVerifier } from '../../data/verifiers.ts';
import { startOpenAiServer, type OpenAiServer } from '../helpers/openai-server.ts';
import { kindOf, searchTeacher, strategyOf, type PromptKind } from './teacher-script.ts';

const item = (i: number) => ({ 'Open-ended Verifiable Question': `Question ${i}: what is the diagnosis?`, 'Ground-True Answer': `Disease ${i}` });

async function withTeacher(script: Parameters<typeof startOpenAiServer>[0], fn: (s: OpenAiServer, c: ChatClient) => Promise<void>) {
  const server = await startOpenAiServer(script);
  try {
    await fn(server, new ChatClient({ baseUrl: server.url, model: 'teacher', concurrency: 4, initialBackoffMs: 5 }));
  } finally {
    await server.close();
  }
}

const search = (c: ChatClient, i: number, config: Partial<SearchConfig> = {}, seed = 7) =>
  searchOne(`id${i}`, item(i), { teacher: c, verifier: new RuleVerifier(), rng: new Rng(`${seed}:id${i}`), config: { ...DEFAULT_SEARCH, ...config } });

const kinds = (s: OpenAiServer) => s.requests.map((r) => kindOf(r.prompt));

test('drawStrategy: Backtracking never first, every strategy reachable later', () => {
  const rng = new Rng(1);
  const first = new Set(Array.from({ length: 500 }, () => drawStrategy(rng, STRATEGIES, 1)));
  assert.deepEqual([...first].sort(), ['Correction', 'Exploring New Paths', 'Verification']);
  const later = new Set(Array.from({ length: 500 }, () => drawStrategy(rng, STRATEGIES, 2)));
  assert.deepEqual([...later].sort(), ['Backtracking', 'Correction', 'Exploring New Paths', 'Verification']);
  assert.throws(() => drawStrategy(rng, ['Backtracking'], 1), /at least one other/);
});

test('a problem solved at once: one chain, then the rewrite into Complex_CoT and Response', async () => {
  await withTeacher(searchTeacher((q) => q.replace(/Question (\d+).*/, 'Disease $1')), async (s, c) => {
    const t = await search(c, 1);
    assert.equal(t.status, 'found');
    assert.deepEqual(kinds(s), ['initial', 'natural', 'response']);
    assert.equal(t.rounds.length, 1);
    assert.equal(t.rounds[0].verdict?.correct, true);
    assert.match(t.sft!.Complex_CoT, /^Hmm, let me think about "Question 1/);
    assert.equal(t.sft!.Response, 'Final answer for "Question 1: what is the diagnosis?".');
    assert.equal(t.sft!.Question, item(1)['Open-ended Verifiable Question']);
    assert.equal(t.sft!.hinted, undefined);
    assert.ok(t.usage.promptTokens > 0 && t.usage.requests === 3);
    assert.match(s.requests[1].prompt, /"action": "Final Conclusion"/, 'the natural rewrite sees the chain');
  });
});

test('while wrong, strategies extend the chain (each one tried, the chain and the verdict in the prompt), until right', async () => {
  await withTeacher(searchTeacher((q, _k, n) => (n === 2 ? q.replace(/Question (\d+).*/, 'Disease $1') : `Wrong guess ${n}`)), async (s, c) => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const before = s.requests.length;
      const t = await search(c, i);
      assert.equal(t.status, 'found');
      assert.deepEqual(kinds(s).slice(before), ['initial', 'strategy', 'strategy', 'natural', 'response']);
      const [first, second] = s.requests.slice(before + 1, before + 3);
      assert.notEqual(strategyOf(first.prompt), 'Backtracking');
      assert.match(first.prompt, /Wrong guess 0/, 'the previous chain is shown');
      assert.match(first.prompt, /The final conclusion above is wrong/);
      assert.match(second.prompt, /Wrong guess 0[\s\S]*Wrong guess 1/, 'the whole chain so far is shown');
      for (const r of [first, second]) {
        const name = strategyOf(r.prompt)!;
        assert.match(r.prompt, new RegExp(`Start with a step whose action is "${name}"`));
        seen.add(name);
      }
      assert.deepEqual(t.rounds.map((r) => r.strategy), [undefined, strategyOf(first.prompt), strategyOf(second.prompt)]);
      assert.equal(t.chain!.length, 9);
      assert.equal(t.chain![3].action, strategyOf(first.prompt));
    }
    assert.deepEqual([...seen].sort(), [...STRATEGIES].sort(), 'every strategy was tried');
  });
});

test('bounds: never right → attempts × (1 + depth) chains, then dropped', async () => {
  for (const [maxDepth, maxAttempts] of [[3, 3], [1, 2], [2, 1]]) {
    await withTeacher(searchTeacher(() => 'Always wrong'), async (s, c) => {
      const t = await search(c, 1, { maxDepth, maxAttempts });
      assert.equal(t.status, 'failed');
      assert.equal(t.sft, undefined);
      assert.equal(s.requests.length, maxAttempts * (1 + maxDepth));
      assert.equal(kinds(s).filter((k) => k === 'initial').length, maxAttempts, 'each attempt restarts from scratch');
      for (let a = 1; a <= maxAttempts; a++) {
        const rounds = t.rounds.filter((r) => r.attempt === a);
        assert.deepEqual(rounds.map((r) => r.depth), Array.from({ length: maxDepth + 1 }, (_, d) => d));
        if (maxDepth >= 1) assert.notEqual(rounds[1].strategy, 'Backtracking');
      }
      const restart = s.requests.filter((r) => kindOf(r.prompt) === 'initial')[1];
      if (restart) assert.doesNotMatch(restart.prompt, /Always wrong/, 'a fresh attempt does not see the old chain');
    });
  }
});

test('hint mode finishes a failed problem with the answer given, and marks it; drop mode does not', async () => {
  const conclude = (q: string, kind: PromptKind) => (kind === 'hint' ? q.replace(/Question (\d+).*/, 'Disease $1') : 'Wrong');
  await withTeacher(searchTeacher(conclude), async (s, c) => {
    const t = await search(c, 4, { maxDepth: 1, maxAttempts: 2, onFailure: 'hint' });
    assert.equal(t.status, 'hinted');
    assert.equal(t.sft?.hinted, true);
    assert.deepEqual(kinds(s), ['initial', 'strategy', 'initial', 'strategy', 'hint', 'natural', 'response']);
    assert.match(s.requests[4].prompt, /the correct answer is "Disease 4"/);
    assert.equal(t.rounds.at(-1)?.kind, 'hint');
  });
  await withTeacher(searchTeacher(conclude), async (s, c) => {
    const t = await search(c, 4, { maxDepth: 1, maxAttempts: 2, onFailure: 'drop' });
    assert.equal(t.status, 'failed');
    assert.ok(!kinds(s).includes('hint'));
  });
});

test('malformed JSON replies: asked again; a chain that never parses is abandoned for a fresh attempt', async () => {
  let garbage = 0;
  const intercept = (_r: unknown, kind: PromptKind) => {
    if (kind === 'initial' && garbage < 4) {
      garbage++;
      return garbage === 1 ? 'Sure, here is my reasoning: the answer is probably...' : '{"CoT": [{"action": "Inner Thinking", "content": "cut';
    }
    return undefined;
  };
  await withTeacher(searchTeacher((q) => q.replace(/Question (\d+).*/, 'Disease $1'), intercept), async (s, c) => {
    const t = await search(c, 2, { maxAttempts: 3 });
    assert.equal(t.status, 'found');
    // attempt 1: 3 malformed replies (1 + 2 re-asks) → abandoned; attempt 2: 1 malformed, then a good chain.
    assert.deepEqual(kinds(s), ['initial', 'initial', 'initial', 'initial', 'initial', 'natural', 'response']);
    assert.match(t.rounds[0].error ?? '', /no usable JSON in 3 replies/);
    assert.equal(t.rounds[1].attempt, 2);
    assert.equal(t.rounds[1].verdict?.correct, true);
  });
});

test('the strategy sequence is a function of the seed and the item id', async () => {
  const run = async (seed: number) => {
    let seq: (string | undefined)[] = [];
    await withTeacher(searchTeacher(() => 'Wrong'), async (_s, c) => {
      const t = await search(c, 3, { maxDepth: 3, maxAttempts: 3 }, seed);
      seq = t.rounds.map((r) => r.strategy);
    });
    return seq;
  };
  const a = await run(11);
  assert.deepEqual(await run(11), a);
  const others = await Promise.all([12, 13, 14].map(run));
  assert.ok(others.some((o) => JSON.stringify(o) !== JSON.stringify(a)));
});
