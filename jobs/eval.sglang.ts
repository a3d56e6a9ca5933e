/**
 * The eval.sglang step: answers an evaluation file's MCQs through an SGLang-compatible
 * server and scores them. With `model` (a checkpoint folder) the built-in server serves
 * it in this process on 127.0.0.1 (a free port) for the duration of the step; with
 * `server` an already running one is used. Answers are appended to results.jsonl as
 * they arrive, so a retried attempt asks only what is missing.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../common/fs.ts';
import { EvalSglangParams } from '../dsl/kinds/eval-sglang.ts';
import { runEval, RESULTS_FILE, REPORT_FILE, type EvalReport } from '../evaluation/client.ts';
import { globReportFiles, loadReports, seriesOf, seriesReportFiles } from '../evaluation/history.ts';
import { renderReportHtml } from '../evaluation/report.ts';
import { startServer, type RunningServer } from '../evaluation/server.ts';
import { parseParams } from '../contract/params.ts';
import { UserError } from '../contract/errors.ts';
import type { JobContext } from '../contract/job.ts';

const CHECKPOINT_EVERY = 25;

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(EvalSglangParams, ctx.params, 'eval.sglang');
  if (!existsSync(p.data)) throw new UserError(`${p.data}: evaluation file not found`, { where: p.data, hint: 'check with.data' });
  const resultsFile = join(ctx.outDir, RESULTS_FILE);
  // A checkpoint from an attempt that wrote elsewhere: start from its answers.
  if (ctx.resumeFrom && resolve(ctx.resumeFrom) !== resolve(resultsFile) && existsSync(ctx.resumeFrom) && !existsSync(resultsFile)) {
    copyFileSync(ctx.resumeFrom, resultsFile);
  }

  let server: RunningServer | undefined;
  let closeBackend: (() => unknown) | undefined;
  let target: { baseUrl: string; model: string; apiKeyEnv?: string; tokenizer?: string };
  if (p.model) {
    if (!existsSync(join(p.model, 'config.json'))) {
      throw new UserError(`${p.model}: not a model folder (no config.json)`, { where: p.model, hint: 'with.model must be a checkpoint folder, e.g. ${{ steps.sft.outputs.checkpoint }}' });
    }
    // Loaded only here: the engine (TensorFlow.js) is not needed to evaluate a remote server.
    const { loadServingBackend, servingReplicas } = await import('../evaluation/engine-thread.ts');
    const backend = await loadServingBackend(p.model, { name: p.served_model_name, replicas: servingReplicas(p.replicas ?? 'auto', p.model), warn: (line) => ctx.log(line) });
    closeBackend = () => backend.close();
    const maxBatch = p.max_batch ?? p.concurrency;
    server = await startServer({ backend, maxBatch, seed: p.seed });
    ctx.log(`serving ${p.model} as "${backend.name}" at ${server.url} (max batch ${maxBatch}${backend.replicas > 1 ? `, up to ${backend.replicas} decode threads` : ''})`);
    target = { baseUrl: `${server.url}/v1`, model: backend.name, tokenizer: p.model };
  } else {
    target = { baseUrl: p.server!.base_url, model: p.server!.model, apiKeyEnv: p.server!.api_key_env, tokenizer: p.server!.tokenizer };
  }

  try {
    let sinceCheckpoint = 0;
    const report = await runEval({
      data: p.data,
      ...target,
      outDir: ctx.outDir,
      strict: p.prompt === 'strict',
      api: p.api,
      scorer: p.scorer,
      temperature: p.temperature,
      topP: p.top_p,
      maxTokens: p.max_new_tokens,
      seed: p.seed,
      concurrency: p.concurrency,
      limitPerSource: p.limit_per_source || undefined,
      policy: p.policy,
      signal: ctx.signal,
      onProgress(done, total, row) {
        const said = row?.error ? `failed: ${row.error === 'prompt_too_long' ? 'prompt too long' : 'rejected'}` : `${row?.last ?? '-'} (gold ${row?.gold})`;
        ctx.progress(done, total, row ? `${row.id}: ${said}` : undefined, 'items');
        if (row && ++sinceCheckpoint >= CHECKPOINT_EVERY) {
          sinceCheckpoint = 0;
          ctx.checkpoint(resultsFile, done);
        }
      },
    });
    const a = report.accuracy;
    const metrics: Record<string, number> = { accuracy: a.average, accuracy_first: a.average_first, accuracy_last: a.average_last, failed: a.failed };
    for (const [source, s] of Object.entries(a.sources)) metrics[`accuracy/${source}`] = s.accuracy;
    ctx.metric(metrics);
    const html = join(ctx.outDir, 'report.html');
    writeFileAtomic(html, await renderReportHtml(report, earlierReports(p.history, report, ctx)));
    ctx.artifact('report', html);
    ctx.artifact('results', resultsFile);
    ctx.artifact('report.json', join(ctx.outDir, 'report.json'));
    if (a.failed > 0) {
      ctx.log(`${a.failed} item(s) failed (${a.prompt_too_long} with a prompt longer than the model's context): counted as not answered; ` +
        `their rows in results.jsonl have "error"`, 'warn');
    }
    ctx.log(`average accuracy ${(100 * a.average).toFixed(1)}% over ${Object.keys(a.sources).length} source(s), ${report.counts.items} items`);
    return { report: html, accuracy: a.average, results: resultsFile };
  } finally {
    await server?.close(5000);
    await closeBackend?.();
  }
}

/** The reports `history` names (a glob, or `auto`: see evaluation/history.ts) that finished before this one. */
function earlierReports(history: string | undefined, report: EvalReport, ctx: JobContext): EvalReport[] {
  if (!history) return [];
  const files = history === 'auto' ? seriesReportFiles(ctx.outDir, ctx.spec.runId, ctx.spec.stepId) : globReportFiles(history);
  const found = loadReports(files, join(ctx.outDir, REPORT_FILE), report.timing.finished_at, (m) => ctx.log(m, 'warn'));
  const where = history === 'auto' ? `runs of series ${seriesOf(ctx.spec.runId) ?? '(none: the run id has no time stamp)'}` : history;
  ctx.log(`accuracy over time: ${found.length} earlier report(s) from ${where}`);
  return found;
}
