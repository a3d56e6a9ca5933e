// The LLM judge and the verifier model's server cannot be reached from the test machine:
// they are played by a scripted OpenAI-compatible server on 127.0.0.1 (real HTTP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient } from '../../data/chat-client.ts';
import { extractFinalResponse, huatuoReward, logprobScorer, makeVerifier, ModelVerifier, normalizeAnswer, RuleVerifier } from '../../data/verifiers.ts';
import { startOpenAiServer } from '../helpers/openai-server.ts';

test('normalisation: case, punctuation, articles, whitespace, unicode', () => {
  assert.equal(normalizeAnswer('  The  Parvovirus-B19 infection. '), 'parvovirus b19 infection');
  assert.equal(normalizeAnswer('Ménière’s disease'), 'meniere s disease');
  assert.equal(normalizeAnswer('ＡＮ Ｘ－ray'), 'x ray');
});

test('rule verifier: exact, contained, wrong, aliases', async () => {
  const v = new RuleVerifier([['myocardial infarction', 'MI', 'heart attack']]);
  const ok = (response: string, reference: string) => v.verify({ response, reference }).then((r) => r.correct);
  assert.equal(await ok('parvovirus B19 infection.', 'Parvovirus B19 infection'), true);
  assert.equal(await ok('The most likely diagnosis is Parvovirus B19 infection.', 'Parvovirus B19 infection'), true);
  assert.equal(await ok('Iron deficiency', 'Parvovirus B19 infection'), false);
  assert.equal(await ok('B19', 'Parvovirus B19 infection'), false);
  assert.equal(await ok('An acute MI.', 'Myocardial infarction'), true);
  assert.equal(await ok('heart attack', 'MI'), true);
  assert.equal(await ok('angina', 'MI'), false);
  assert.equal(await ok('', 'MI'), false);
  const r = await v.verify({ response: 'Heart attack', reference: 'myocardial infarction' });
  assert.deepEqual([r.correct, r.score], [true, 1]);
});

test('rule verifier: option letters and option texts when options are given', async () => {
  const v = new RuleVerifier();
  const options = { A: 'Folate deficiency', B: 'Iron deficiency', C: 'Parvovirus B19 infection' };
  const check = async (response: string, reference: string) => (await v.verify({ response, reference, options })).correct;
  assert.equal(await check('C', 'Parvovirus B19 infection'), true);
  assert.equal(await check('The answer is (C).', 'Parvovirus B19 infection'), true);
  assert.equal(await check('C. Parvovirus B19 infection', 'C'), true);
  assert.equal(await check('Parvovirus B19 infection', 'C'), true);
  assert.equal(await check('the answer is B', 'C'), false);
  assert.equal(await check('B', 'Parvovirus B19 infection'), false);
  assert.equal(await check('Either iron deficiency or parvovirus B19 infection', 'C'), false, 'naming other options too is not a committed answer');
  assert.equal(await check('The answer would be C', 'Parvovirus B19 infection'), true);
  assert.equal(await check('Option C', 'Parvovirus B19 infection'), true);
  const article = await v.verify({ response: 'The answer is a parvovirus B19 infection', reference: 'C', options });
  assert.equal(article.correct, true);
  assert.doesNotMatch(article.reason, /chose option A/, '"a" is an article here, not option A');
  const r = await v.verify({ response: 'A', reference: 'C', options });
  assert.match(r.reason, /chose option A \(Folate deficiency\)/);
});

test('LLM judge: True/False replies over the chat API, with the reference in the prompt', async () => {
  const server = await startOpenAiServer((req) => (req.prompt.includes('<response>\nParvovirus') ? 'True' : req.prompt.includes('<response>\nIron') ? 'False.' : 'I am not sure'));
  try {
    const v = makeVerifier({ type: 'llm', base_url: server.url, model: 'judge' });
    assert.equal(v.name, 'llm');
    const a = await v.verify({ response: 'Parvovirus B19', reference: 'Parvovirus B19 infection', question: 'What causes it?' });
    assert.deepEqual([a.correct, a.score], [true, 1]);
    assert.match(server.requests[0].prompt, /<reference>\nParvovirus B19 infection\n<\/reference>/);
    assert.match(server.requests[0].prompt, /<question>\nWhat causes it\?/);
    assert.equal(server.requests[0].body.temperature, 0);
    assert.equal((await v.verify({ response: 'Iron deficiency', reference: 'Parvovirus B19 infection' })).correct, false);
    const c = await v.verify({ response: 'Something', reference: 'X' });
    assert.equal(c.correct, false);
    assert.match(c.reason, /neither True nor False/);
  } finally {
    await server.close();
  }
});

test('model verifier: P(True) strictly above the threshold (0.4 by default)', async () => {
  for (const [p, correct] of [[0.39, false], [0.4, false], [0.41, true], [0.95, true], [0.05, false]] as const) {
    const v = makeVerifier({ type: 'model', model: 'verifier-ckpt' }, { scorer: async () => p });
    const r = await v.verify({ response: 'x', reference: 'y' });
    assert.equal(r.correct, correct, `P(True)=${p}`);
    assert.equal(r.score, p);
  }
  const strict = new ModelVerifier(async () => 0.6, 0.7);
  assert.equal((await strict.verify({ response: 'x', reference: 'y' })).correct, false);
  assert.throws(() => makeVerifier({ type: 'model', model: 'no/such/ckpt' }), /verifier\.model: no\/such\/ckpt is not a checkpoint folder \(no config\.json\)/);
  assert.throws(() => makeVerifier({ type: 'model', model: 'ckpt', base_url: 'http://127.0.0.1:1/v1' }), /not both/);
  assert.throws(() => makeVerifier({ type: 'model' }), /give model .* or base_url/);
});

test('model verifier over a server: P(True) from the logprobs of "True" and "False"', async () => {
  const lp = (pTrue: number, pFalse: number) => ({
    text: pTrue > pFalse ? 'True' : 'False',
    logprobs: [{ token: pTrue > pFalse ? 'True' : 'False', logprob: Math.log(Math.max(pTrue, pFalse)), top_logprobs: [{ token: 'True', logprob: Math.log(pTrue) }, { token: ' False', logprob: Math.log(pFalse) }, { token: 'Maybe', logprob: Math.log(0.01) }] }],
  });
  const script = [lp(0.3, 0.6), lp(0.5, 0.45), { text: 'True' }, lp(0.8, 0.2)];
  const server = await startOpenAiServer((req) => script[req.n]);
  try {
    const client = new ChatClient({ baseUrl: server.url, model: 'verifier', initialBackoffMs: 10 });
    const v = makeVerifier({ type: 'model', served_model: 'verifier', base_url: server.url }, { client });
    const a = await v.verify({ response: 'x', reference: 'y' });
    assert.ok(Math.abs(a.score - 1 / 3) < 1e-9, `score ${a.score}`);
    assert.equal(a.correct, false);
    const b = await v.verify({ response: 'x', reference: 'y' });
    assert.ok(Math.abs(b.score - 0.5 / 0.95) < 1e-9);
    assert.equal(b.correct, true);
    assert.equal(server.requests[0].body.logprobs, true);
    assert.equal(server.requests[0].body.max_tokens, 1);
    await assert.rejects(logprobScorer(client)('prompt'), /no logprobs/);
    // Built from the pipeline's params alone: served_model is the name sent to the server.
    const fromParams = makeVerifier({ type: 'model', base_url: server.url, served_model: 'judge-7b', api_key_env: 'DOCTOR_AGENT_TEST_NO_KEY' });
    assert.ok(Math.abs((await fromParams.verify({ response: 'x', reference: 'y' })).score - 0.8) < 1e-9);
    assert.equal(server.requests[3].body.model, 'judge-7b');
  } finally {
    await server.close();
  }
});

test('extractFinalResponse takes the text after the last "## Final Response"', () => {
  assert.equal(extractFinalResponse('## Thinking\n\nhmm\n\n## Final Response\n\n The answer is C. '), 'The answer is C.');
  assert.equal(extractFinalResponse('## Final Response\nfirst\n## Final Response\nsecond'), 'second');
  assert.equal(extractFinalResponse('no headings here'), 'no headings here');
});

test('huatuoReward: 0 unless "## Final Response\\n\\n" and "## Thinking" appear exactly once; 1 correct; 0.1 formatted but wrong', () => {
  const good = '## Thinking\n\nLet me think.\n\n## Final Response\n\nC';
  assert.equal(huatuoReward(good, true), 1);
  assert.equal(huatuoReward(good, false), 0.1);
  assert.equal(huatuoReward('## Final Response\n\nC', true), 0);
  assert.equal(huatuoReward('## Thinking\n\nx', true), 0);
  assert.equal(huatuoReward(good + '\n## Thinking\nagain', true), 0);
  assert.equal(huatuoReward(good + '\n## Final Response\n\nC', true), 0);
  assert.equal(huatuoReward(good + '\n## Final Response\nC', true), 1, 'only the heading followed by a blank line is counted');
  assert.equal(huatuoReward('', false), 0);
});
