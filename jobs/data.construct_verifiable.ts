/**
 * data.construct_verifiable: MCQ items → verifiable problems (open-ended question +
 * short ground-truth answer), by the teacher model (`llm`, optionally filtered) or by
 * deterministic templates (`template`). Outputs the problems (JSON) and a report (JSON).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashJson } from '../common/hash.ts';
import { writeJsonAtomic } from '../common/fs.ts';
import { ChatClient, emptyUsage, teacherConfig } from '../data/chat-client.ts';
import { llmConstruct, templateConstruct, type ConstructOutcome } from '../data/construct.ts';
import { loadItems, writeJsonArray } from '../data/loaders.ts';
import { runItems } from '../data/item-runner.ts';
import { FILTER_LABELS } from '../data/prompts/construct.ts';
import { ConstructVerifiableParams } from '../dsl/kinds/construct-verifiable.ts';
import { UserError } from '../contract/errors.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

const PROMPTS_SOURCE = readFileSync(new URL('../data/prompts/construct.ts', import.meta.url), 'utf8');

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(ConstructVerifiableParams, ctx.params, 'data.construct_verifiable');
  const loaded = loadItems(p.input, 'mcq', { policy: p.on_bad_record });
  if (loaded.skipped > 0) ctx.log(`${p.input}: skipped ${loaded.skipped} bad record(s), e.g. ${loaded.problems[0]}`, 'warn');
  const items = p.limit ? loaded.items.slice(0, p.limit) : loaded.items;
  if (items.length === 0) throw new UserError(`${p.input}: no usable MCQ items`, { where: p.input });

  let outcomes: ConstructOutcome[];
  let usage = emptyUsage();
  let fromCache = 0;
  if (p.method === 'template') {
    outcomes = items.map(templateConstruct);
    ctx.progress(items.length, items.length, undefined, 'items');
  } else {
    const teacher = p.teacher!;
    const client = new ChatClient(teacherConfig(teacher));
    if (client.missingKeyEnv) ctx.log(`${client.missingKeyEnv} is not set: requests to ${teacher.base_url} go without an API key`, 'warn');
    const stage = hashJson({ kind: 'data.construct_verifiable', model: teacher.model, temperature: teacher.temperature, filter: p.filter, prompts: PROMPTS_SOURCE });
    const r = await runItems(ctx, items, { stage, concurrency: teacher.concurrency, unit: 'items' }, (item) => llmConstruct(item, client, { filter: p.filter, usage: emptyUsage(), signal: ctx.signal }));
    outcomes = r.results;
    fromCache = r.fromCache;
    usage = client.usage;
  }

  const verifiable = outcomes.flatMap((o) => (o.status === 'kept' ? [o.item] : []));
  const labels = Object.fromEntries(FILTER_LABELS.map((l) => [l, 0])) as Record<string, number>;
  for (const o of outcomes) if (o.label) labels[o.label]++;
  const report = {
    input: p.input,
    method: p.method,
    filter: p.method === 'llm' ? p.filter : false,
    records: { loaded: loaded.items.length, skipped_bad: loaded.skipped, bad_examples: loaded.problems.slice(0, 20) },
    total: items.length,
    kept: verifiable.length,
    filtered: outcomes.filter((o) => o.status === 'filtered').length,
    labels,
    failed: outcomes.filter((o) => o.status === 'failed').length,
    failures: outcomes.flatMap((o, i) => (o.status === 'failed' ? [{ index: i, where: loaded.where[i], error: o.error }] : [])),
    resumed_from_cache: fromCache,
    usage,
  };
  const verifiablePath = join(ctx.outDir, 'verifiable.json');
  const reportPath = join(ctx.outDir, 'report.json');
  writeJsonArray(verifiablePath, verifiable);
  writeJsonAtomic(reportPath, report);
  ctx.metric({ total: report.total, kept: report.kept, filtered: report.filtered, failed: report.failed });
  ctx.artifact('verifiable', verifiablePath);
  ctx.artifact('report', reportPath);
  return { verifiable: verifiablePath, report: reportPath };
}
