/**
 * data.knowledge_base: generates the built-in knowledge-base benchmark into the step's
 * folder — mcq.json, verifiable.json, sft.json (training) and eval.json (the two
 * held-out sources) — each written atomically.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../common/fs.ts';
import { generateKb, serializeKb } from '../data/kb/generate.ts';
import { SPECIALTIES } from '../data/kb/schema.ts';
import { KnowledgeBaseParams } from '../dsl/kinds/knowledge-base.ts';
import { UserError } from '../contract/errors.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

export const OUTPUT_FILES = { mcq: 'mcq.json', verifiable: 'verifiable.json', sft: 'sft.json', eval: 'eval.json' } as const;

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(KnowledgeBaseParams, ctx.params, 'data.knowledge_base');
  const unknown = (p.specialties ?? []).filter((s) => !(SPECIALTIES as readonly string[]).includes(s));
  if (unknown.length) {
    throw new UserError(`data.knowledge_base: unknown specialties: ${unknown.join(', ')}`,
      { where: `step ${ctx.spec.stepId}, with.specialties`, hint: `choose from: ${SPECIALTIES.join(', ')}` });
  }
  const started = performance.now();
  const data = generateKb(
    { seed: p.seed, trainSize: p.train_size, evalSize: p.eval_size, cotStyle: p.cot_style, specialties: p.specialties },
    (done, total) => ctx.progress(done, total, 'generating', 'items'),
  );
  if (ctx.signal.aborted) throw new Error('data.knowledge_base: stopped before writing its outputs');
  const text = serializeKb(data);
  const outputs: Record<string, string> = {};
  for (const [name, file] of Object.entries(OUTPUT_FILES) as [keyof typeof OUTPUT_FILES, string][]) {
    const path = join(ctx.outDir, file);
    writeFileAtomic(path, text[name]);
    ctx.artifact(name, path);
    outputs[name] = path;
  }
  const evalItems = Object.values(data.eval).reduce((n, list) => n + list.length, 0);
  const seconds = (performance.now() - started) / 1000;
  ctx.metric({
    train_items: data.mcq.length,
    eval_items: evalItems,
    backtracked_share: data.meta.train.length ? data.meta.train.filter((m) => m.backtracked).length / data.meta.train.length : 0,
    items_per_second: (data.mcq.length + evalItems) / Math.max(seconds, 1e-6),
  });
  return outputs;
}
