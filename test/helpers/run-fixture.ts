/**
 * A small finished run laid out in an artifact store as the steps write it (plan.json, each
 * step's metrics.jsonl, iterations.jsonl, an evaluation's report.json and results.jsonl, the
 * activity's outcomes), for the run report and stage comparison tests. Real files, small data.
 *
 * Held-out scores, by item (1 correct): source `src_a` (5 options each) SFT 1,0,0,0 and RL
 * 1,1,0,0; source `src <b>&"c"` (4 options each) SFT 0,0,0,0 and RL 1,1,1,1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeStepOutcome } from '../../runtime/run-report.ts';
import { ArtifactStore } from '../../runtime/store.ts';

export const FIXTURE_SOURCES = { a: 'src_a', b: 'src <b>&"c"' } as const;
export const FIXTURE_SCORES: Record<'sft' | 'rl', Record<string, number[]>> = {
  sft: { [FIXTURE_SOURCES.a]: [1, 0, 0, 0], [FIXTURE_SOURCES.b]: [0, 0, 0, 0] },
  rl: { [FIXTURE_SOURCES.a]: [1, 1, 0, 0], [FIXTURE_SOURCES.b]: [1, 1, 1, 1] },
};

const LETTERS = 'ABCDE';

function step(id: string, uses: string, needs: string[], w: Record<string, unknown>) {
  return {
    id, uses, runner: 'builtin', needs, with: w, queue: 'cpu', cache: true, outputs: [], hash: id,
    retry: { maximumAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 1000 },
    timeouts: { stepMs: 1000, attemptMs: 1000, heartbeatMs: 1000 },
    source: { file: 'fixture.yaml', line: 1, col: 1 },
  };
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Writes the run `runId` into the store at `root`; returns the store. */
export function writeFixtureRun(root: string, runId: string, o: { pipeline?: string } = {}): ArtifactStore {
  const store = new ArtifactStore(root);
  const plan = {
    format: 1, name: o.pipeline ?? 'fixture', description: 'a fixture <run> & its steps', sources: ['fixture.yaml'], params: {}, hash: 'x',
    steps: [
      step('kb', 'data.knowledge_base', [], {}),
      step('sft', 'train.sft', ['kb'], { data: '${{ steps.kb.outputs.sft }}' }),
      step('grpo', 'rl.grpo', ['sft'], { policy: '${{ steps.sft.outputs.checkpoint }}' }),
      step('eval_sft', 'eval.sglang', ['kb', 'sft'], { model: '${{ steps.sft.outputs.checkpoint }}', data: '${{ steps.kb.outputs.eval }}' }),
      step('eval', 'eval.sglang', ['grpo', 'kb'], { model: '${{ steps.grpo.outputs.checkpoint }}', data: '${{ steps.kb.outputs.eval }}' }),
    ],
  };
  store.writeRunManifest(runId, plan);

  // kb: the evaluation file.
  const evalFile = join(store.stepDir(runId, 'kb'), 'eval.json');
  const options = (k: number) => Object.fromEntries([...LETTERS.slice(0, k)].map((l) => [l, `option ${l}`]));
  const items = (k: number) => Array.from({ length: 4 }, (_, i) => ({ question: `question ${i}?`, options: options(k), answer_idx: 'A', answer: 'option A' }));
  writeFileSync(evalFile, JSON.stringify({ [FIXTURE_SOURCES.a]: items(5), [FIXTURE_SOURCES.b]: items(4) }));
  writeFileSync(store.stepLog(runId, 'kb'), 'kb log\n');

  // sft: loss and learning rate per step.
  writeFileSync(store.metricsFile(runId, 'sft'), jsonl(Array.from({ length: 12 }, (_, i) => ({
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), step: i + 1,
    values: { loss: 6 / (i + 1), lr: 0.001 * Math.min(1, (i + 1) / 3), grad_norm: 1, epoch: 0 },
  }))));
  mkdirSync(join(store.stepDir(runId, 'sft'), 'checkpoint'), { recursive: true });
  writeFileSync(join(store.stepDir(runId, 'sft'), 'checkpoint', 'config.json'), '{}');

  // grpo: one row per iteration.
  const iterations = [1, 2, 3].map((iteration) => ({
    iteration, reward_mean: 0.1 * iteration, accuracy: 0.2 * iteration, format_rate: 0.5 + 0.1 * iteration, lr: 0.0002,
    response_length: 80 + iteration, loss: 0.01, kl: 0.01 * iteration, clip_frac: 0.03 / iteration, steps: 4, responses: 32,
  }));
  writeFileSync(join(store.stepDir(runId, 'grpo'), 'iterations.jsonl'), jsonl(iterations));
  writeFileSync(store.metricsFile(runId, 'grpo'), jsonl(iterations.map((values) => ({ time: '2026-01-01T00:01:00Z', step: values.iteration, values }))));

  // The two evaluations.
  for (const [id, stage] of [['eval_sft', 'sft'], ['eval', 'rl']] as const) {
    const dir = store.stepDir(runId, id);
    const rows = Object.entries(FIXTURE_SCORES[stage]).flatMap(([source, scores]) => scores.map((c, index) => ({
      source, id: `${source}/${index}`, index, prompt: `question ${index}?`, output: c ? 'The answer is A' : 'The answer is B',
      first: c ? 'A' : 'B', last: c ? 'A' : 'B', rule: 'answer-phrase', gold: 'A', correct_first: !!c, correct_last: !!c, correct: !!c,
      scorer: 'huatuo', prompt_tokens: 10, completion_tokens: 5, seed: 1,
    })));
    writeFileSync(join(dir, 'results.jsonl'), jsonl(rows));
    const sources = Object.fromEntries(Object.entries(FIXTURE_SCORES[stage]).map(([source, scores]) => {
      const acc = scores.reduce((a, b) => a + b, 0) / scores.length;
      return [source, { n: scores.length, accuracy: acc, accuracy_first: acc, accuracy_last: acc }];
    }));
    writeFileSync(join(dir, 'report.json'), JSON.stringify({
      model: `${runId}/${id}`, data: evalFile, scorer: 'huatuo', accuracy: { policy: 'max', sources, average: 0 },
      timing: { started_at: '2026-01-01T00:02:00Z', finished_at: '2026-01-01T00:03:00Z', wall_s: 60 },
    }));
    writeFileSync(join(dir, 'report.html'), '<!doctype html><title>eval</title>');
  }

  for (const id of ['kb', 'sft', 'grpo', 'eval_sft', 'eval']) {
    writeFileSync(store.stepLog(runId, id), `${id} log\n`);
    writeStepOutcome(store, runId, {
      step: id, state: 'succeeded', attempt: 1, finished_at: '2026-01-01T00:03:00Z',
      outputs: id === 'sft' ? { checkpoint: join(store.stepPath(runId, 'sft'), 'checkpoint') } : id === 'kb' ? { eval: evalFile } : {},
    });
  }
  return store;
}
