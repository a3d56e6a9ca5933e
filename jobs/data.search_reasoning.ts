/**
 * data.search_reasoning: verifiable problems → SFT items (Question, Complex_CoT,
 * Response) by verifier-guided reasoning search (data/search.ts). Outputs the SFT items
 * (JSON) and every problem's full search trace (JSONL) beside them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashJson } from '../common/hash.ts';
import { Rng } from '../common/rng.ts';
import { ChatClient, teacherConfig } from '../data/chat-client.ts';
import { runItems } from '../data/item-runner.ts';
import { loadItems, writeJsonArray, writeJsonl } from '../data/loaders.ts';
import { searchOne, STRATEGIES, type SearchTrace, type Strategy } from '../data/search.ts';
import { makeVerifier } from '../data/verifiers.ts';
import { SearchReasoningParams } from '../dsl/kinds/search-reasoning.ts';
import { UserError } from '../contract/errors.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

const PROMPTS_SOURCE = readFileSync(new URL('../data/prompts/search.ts', import.meta.url), 'utf8');
const STRATEGY_NAMES: Record<string, Strategy> = {
  backtracking: 'Backtracking',
  exploring_new_paths: 'Exploring New Paths',
  verification: 'Verification',
  correction: 'Correction',
};

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(SearchReasoningParams, ctx.params, 'data.search_reasoning');
  const strategies = p.strategies.map((s) => STRATEGY_NAMES[s]);
  if (!strategies.some((s) => s !== 'Backtracking')) {
    throw new UserError('strategies: Backtracking is never the first strategy, so list at least one other', { hint: `choose among ${STRATEGIES.join(', ')}` });
  }
  const loaded = loadItems(p.input, 'verifiable', { policy: p.on_bad_record });
  if (loaded.skipped > 0) ctx.log(`${p.input}: skipped ${loaded.skipped} bad record(s), e.g. ${loaded.problems[0]}`, 'warn');
  const items = p.limit ? loaded.items.slice(0, p.limit) : loaded.items;
  if (items.length === 0) throw new UserError(`${p.input}: no usable verifiable problems`, { where: p.input });

  const teacher = new ChatClient(teacherConfig(p.teacher, p.seed));
  if (teacher.missingKeyEnv) ctx.log(`${teacher.missingKeyEnv} is not set: requests to ${p.teacher.base_url} go without an API key`, 'warn');
  let verifier;
  try {
    verifier = makeVerifier(p.verifier);
  } catch (err) {
    throw new UserError((err as Error).message, { where: 'with.verifier' });
  }
  const config = { maxDepth: p.max_depth, maxAttempts: p.max_attempts, strategies, onFailure: p.on_failure };
  const { base_url: _u, api_key_env: _k, concurrency: _c, max_retries: _r, timeout: _t, ...verifierKey } = p.verifier as Record<string, unknown>;
  const stage = hashJson({ kind: 'data.search_reasoning', model: p.teacher.model, temperature: p.teacher.temperature, verifier: verifierKey, config, seed: p.seed, prompts: PROMPTS_SOURCE });

  const { results, fromCache } = await runItems(ctx, items, { stage, concurrency: p.teacher.concurrency, unit: 'problems' }, (item, id) =>
    searchOne(id, item, { teacher, verifier, rng: new Rng(`${p.seed}:${id}`), config, signal: ctx.signal }));

  const traces: SearchTrace[] = results;
  const sft = traces.flatMap((t) => (t.sft ? [t.sft] : []));
  const count = (s: SearchTrace['status']) => traces.filter((t) => t.status === s).length;
  const sftPath = join(ctx.outDir, 'sft.json');
  const tracesPath = join(ctx.outDir, 'traces.jsonl');
  writeJsonArray(sftPath, sft);
  writeJsonl(tracesPath, traces);
  const found = count('found');
  const hinted = count('hinted');
  const failed = count('failed');
  ctx.log(`search: ${found} found, ${hinted} hinted, ${failed} dropped of ${traces.length} (${fromCache} from cache); teacher ${JSON.stringify(teacher.usage)}`);
  ctx.metric({ problems: traces.length, found, hinted, dropped: failed, sft_items: sft.length });
  ctx.artifact('sft', sftPath);
  ctx.artifact('traces', tracesPath);
  return { sft: sftPath, traces: tracesPath };
}
