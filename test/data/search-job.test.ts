// The teacher (GPT-4o in the recipe) cannot be reached from the test machine: a scripted
// OpenAI-compatible server on 127.0.0.1 plays it (and the LLM judge), over real HTTP.
// The job runs as a real child process (jobs/main.ts) and is killed with SIGKILL mid-way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadItems } from '../../data/loaders.ts';
import { CACHE_FILE } from '../../data/item-runner.ts';
import { run } from '../../jobs/data.search_reasoning.ts';
import type { JobMessage, JobSpec } from '../../contract/protocol.ts';
import { startJobProcess, type JobExit } from '../helpers/job-process.ts';
import { startOpenAiServer, type Scripted } from '../helpers/openai-server.ts';
import { recordingContext } from './job-ctx.ts';
import { kindOf, questionOf, searchTeacher } from './teacher-script.ts';

const N = 10;
const question = (i: number) => `Case ${i}: a patient with findings ${i}; what is the diagnosis?`;
const indexOf = (q: string) => Number(/^Case (\d+):/.exec(q)?.[1]);
const right = (q: string) => `Condition ${indexOf(q)}`;

function inputFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'search-job-')), 'verifiable.json');
  writeFileSync(file, JSON.stringify(Array.from({ length: N }, (_, i) => ({ 'Open-ended Verifiable Question': question(i), 'Ground-True Answer': `Condition ${i}` }))));
  return file;
}

/** Even cases are solved by the first chain, odd ones after one strategy step. */
const conclude = (q: string, _k: unknown, n: number) => (indexOf(q) % 2 === 0 || n >= 1 ? right(q) : 'Something else');
const requestsPerCase = (i: number) => (i % 2 === 0 ? 3 : 4);

function runJob(spec: JobSpec, onMessage: (m: JobMessage, kill: () => void) => void): Promise<JobExit> {
  return startJobProcess(spec, (m, child) => onMessage(m, () => child.kill('SIGKILL'))).done;
}

test('crash halfway (SIGKILL): the second run does only the unfinished problems; 429 and 5xx are survived', { timeout: 90_000 }, async () => {
  const seenErrors: string[] = [];
  let hang = true;
  const intercept = (req: { prompt: string }, kind: string): Scripted | undefined => {
    const i = indexOf(questionOf(req.prompt));
    const tag = `${kind}:${i}`;
    if (kind === 'initial' && i <= 2 && !seenErrors.includes(tag)) {
      seenErrors.push(tag);
      return i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: i === 1 ? 500 : 503 };
    }
    if (hang && i >= 5) return { delayMs: 60_000, then: 'too late' };
    return undefined;
  };
  const server = await startOpenAiServer(searchTeacher(conclude, intercept));
  try {
    const outDir = mkdtempSync(join(tmpdir(), 'search-out-'));
    mkdirSync(outDir, { recursive: true });
    const params = { input: inputFile(), teacher: { base_url: server.url, model: 'teacher', concurrency: 2, max_retries: 3, timeout: 120 }, verifier: { type: 'rule' }, seed: 3 };
    const spec: JobSpec = { kind: 'data.search_reasoning', runId: 'run1', stepId: 'search', params, outDir, attempt: 1 };

    // Run 1: cases 0-4 finish (through a 429 and two 5xx), cases 5+ hang; killed once 5 are checkpointed.
    const first = await runJob(spec, (m, kill) => {
      if (m.type === 'checkpoint' && m.step === 5) kill();
    });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    const checkpoints = first.messages.filter((m): m is Extract<JobMessage, { type: 'checkpoint' }> => m.type === 'checkpoint');
    assert.deepEqual(checkpoints.map((c) => c.step), [1, 2, 3, 4, 5]);
    assert.equal(checkpoints[0].path, join(outDir, CACHE_FILE));
    assert.ok(first.messages.some((m) => m.type === 'progress' && m.total === N));
    assert.deepEqual(seenErrors.sort(), ['initial:0', 'initial:1', 'initial:2']);
    const firstRun = server.requests.length;
    const cached = readFileSync(join(outDir, CACHE_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { value: { question: string } });
    const done = new Set(cached.map((c) => indexOf(c.value.question)));
    assert.deepEqual([...done].sort(), [0, 1, 2, 3, 4]);

    // Run 2 (a retry, handed the checkpoint): only the unfinished cases reach the teacher.
    hang = false;
    server.setScript(searchTeacher(conclude, intercept));
    const second = await runJob({ ...spec, attempt: 2, resumeFrom: join(outDir, CACHE_FILE) }, () => {});
    assert.equal(second.code, 0, second.stderr + JSON.stringify(second.messages.filter((m) => m.type === 'error')));
    const asked = server.requests.slice(firstRun).map((r) => indexOf(questionOf(r.prompt)));
    assert.deepEqual([...new Set(asked)].sort((a, b) => a - b), [5, 6, 7, 8, 9]);
    assert.equal(asked.length, [5, 6, 7, 8, 9].reduce((s, i) => s + requestsPerCase(i), 0));
    assert.ok(second.messages.some((m) => m.type === 'log' && /resuming: 5 of 10/.test(m.message)));

    const result = second.messages.find((m) => m.type === 'result') as Extract<JobMessage, { type: 'result' }>;
    assert.deepEqual(result.outputs, { sft: join(outDir, 'sft.json'), traces: join(outDir, 'traces.jsonl') });
    const sft = loadItems(join(outDir, 'sft.json'), 'sft').items;
    assert.deepEqual(sft.map((s) => s.Question), Array.from({ length: N }, (_, i) => question(i)));
    const traces = readFileSync(join(outDir, 'traces.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(traces.length, N);
    assert.deepEqual(traces.map((t) => t.rounds.length), Array.from({ length: N }, (_, i) => (i % 2 === 0 ? 1 : 2)));
    assert.ok(traces.every((t) => t.status === 'found'));
  } finally {
    await server.close();
  }
});

test('hint mode through the job, with an LLM judge: unsolved problems are finished with the answer and marked', async () => {
  const teacher = searchTeacher((q, kind) => (kind === 'hint' || indexOf(q) < 2 ? right(q) : 'Something else'), (req, kind) => {
    if (kind !== 'judge') return undefined;
    const resp = /<response>\n([\s\S]*?)\n<\/response>/.exec(req.prompt)?.[1];
    const ref = /<reference>\n([\s\S]*?)\n<\/reference>/.exec(req.prompt)?.[1];
    return resp === ref ? 'True' : 'False';
  });
  const server = await startOpenAiServer(teacher);
  try {
    const outDir = mkdtempSync(join(tmpdir(), 'search-hint-'));
    const params = {
      input: inputFile(),
      limit: 4,
      teacher: { base_url: server.url, model: 'teacher', concurrency: 2 },
      verifier: { type: 'llm', base_url: server.url, model: 'judge' },
      max_depth: 1,
      max_attempts: 1,
      on_failure: 'hint',
    };
    const ctx = recordingContext(params, outDir);
    const out = await run(ctx);
    const sft = JSON.parse(readFileSync(out.sft as string, 'utf8')) as { Question: string; hinted?: boolean }[];
    assert.deepEqual(sft.map((s) => [indexOf(s.Question), s.hinted ?? false]), [[0, false], [1, false], [2, true], [3, true]]);
    const judged = server.requests.filter((r) => kindOf(r.prompt) === 'judge');
    assert.equal(judged.length, 2 + 2 * 3, 'cases 0-1: one verdict; cases 2-3: initial, one strategy, the hint');
    assert.ok(judged.every((r) => r.body.model === 'judge'));
    const metric = ctx.messages.find((m) => m.type === 'metric') as Extract<JobMessage, { type: 'metric' }>;
    assert.deepEqual(metric.values, { problems: 4, found: 2, hinted: 2, dropped: 0, sft_items: 4 });
  } finally {
    await server.close();
  }
});

test('params the search cannot honour are user errors', async () => {
  const base = { input: inputFile(), teacher: { base_url: 'http://127.0.0.1:9/v1', model: 't' }, verifier: { type: 'rule' } };
  const dir = mkdtempSync(join(tmpdir(), 'search-bad-'));
  await assert.rejects(run(recordingContext({ ...base, strategies: ['backtracking'] }, dir)), (e: Error) => e.name === 'UserError' && /backtracking is never the first/.test(e.message));
  await assert.rejects(run(recordingContext({ ...base, verifier: { type: 'model', model: 'ckpt/verifier' } }, dir)), (e: Error) => e.name === 'UserError' && /set verifier\.base_url/.test(e.message));
  await assert.rejects(run(recordingContext({ ...base, max_depth: 0 }, dir)), /max_depth/);
});
