/**
 * Agreement of the `huatuo` scorer with HuatuoGPT-o1's evaluation/scorer.py, run by hand:
 *
 *   npx tsx scripts/scorer-agreement/main.ts PATH/TO/scorer.py [--size 20000] [--seed 0]
 *       [--data samples/eval-format-sample.json] [--corpus FILE] [--save FILE] [--python python3]
 *
 * It builds an adversarial corpus of outputs (corpus.ts) from the evaluation file, or reads one
 * (--corpus: a JSON list of {source, kind, options, answer_idx, output}), post-processes the
 * outputs as the client does, runs the original's match_choice on each and its score() on the
 * non-empty ones in Python (only the standard library is needed), runs ours, and reports the
 * share of items with the same (first, last) letters and whether every source's accuracies
 * agree. Disagreements are printed (the first 20) and written next to --save or to
 * scorer-disagreements.json. Exit 1 when anything disagrees.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEvalFile } from '../../data/loaders.ts';
import { huatuoExtract } from '../../evaluation/huatuo-scorer.ts';
import { postprocessOutput } from '../../evaluation/prompts.ts';
import { SCORERS, scoreResponse, summarize } from '../../evaluation/scorer.ts';
import { buildCorpus, type CorpusItem } from './corpus.ts';

/** Runs the given scorer.py on the corpus: match_choice per item, score() over the non-empty ones. */
const DRIVER = String.raw`
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("original_scorer", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
items = json.load(open(sys.argv[2], encoding="utf-8"))
choices = []
for it in items:
    try:
        ans, kind = mod.match_choice(it["output"], it["options"])
        choices.append([ans[0], ans[1], kind])
    except Exception as e:
        choices.append([None, None, "error: %s" % e])
kept = [dict(it) for it in items if len(it["output"]) > 0]
res, _, _ = mod.score(kept)
json.dump({"choices": choices, "score": res}, open(sys.argv[3], "w", encoding="utf-8"))
`;

function main(): number {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      data: { type: 'string', default: join(import.meta.dirname, '../../samples/eval-format-sample.json') },
      size: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '0' },
      corpus: { type: 'string' },
      save: { type: 'string' },
      python: { type: 'string', default: 'python3' },
    },
  });
  if (positionals.length !== 1) {
    console.error('usage: npx tsx scripts/scorer-agreement/main.ts PATH/TO/scorer.py [--size N] [--seed N] [--data FILE] [--corpus FILE] [--save FILE]');
    return 2;
  }
  const scorerPy = resolve(positionals[0]);
  const raw: CorpusItem[] = values.corpus
    ? (JSON.parse(readFileSync(values.corpus, 'utf8')) as CorpusItem[])
    : buildCorpus(loadEvalFile(values.data!).sources, { size: Number(values.size), seed: Number(values.seed) });
  if (values.save) writeFileSync(values.save, JSON.stringify(raw));
  const items = raw.map((it) => ({ ...it, output: postprocessOutput(it.output) }));

  const dir = mkdtempSync(join(tmpdir(), 'scorer-agreement-'));
  let py: { choices: [string | null, string | null, number | string][]; score: Record<string, [number, number, number, number]> };
  try {
    writeFileSync(join(dir, 'driver.py'), DRIVER);
    writeFileSync(join(dir, 'corpus.json'), JSON.stringify(items));
    const t0 = performance.now();
    execFileSync(values.python!, [join(dir, 'driver.py'), scorerPy, join(dir, 'corpus.json'), join(dir, 'out.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
    console.log(`python: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    py = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const t0 = performance.now();
  const ours = items.map((it) => huatuoExtract(it.output, it.options));
  console.log(`ours: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const disagreements: unknown[] = [];
  const byKind = new Map<string, [number, number]>();
  items.forEach((it, i) => {
    const [pf, pl, pk] = py.choices[i];
    const o = ours[i];
    const same = pf === o.first && pl === o.last;
    const k = byKind.get(it.kind) ?? [0, 0];
    byKind.set(it.kind, [k[0] + (same ? 1 : 0), k[1] + 1]);
    if (!same) disagreements.push({ index: i, kind: it.kind, output: it.output, options: it.options, python: [pf, pl, pk], ours: [o.first, o.last, o.rule] });
  });
  const agree = items.length - disagreements.length;
  console.log(`(first, last) identical: ${agree}/${items.length} = ${((100 * agree) / items.length).toFixed(3)}%`);
  for (const [kind, [a, n]] of byKind) console.log(`  ${kind.padEnd(16)} ${a}/${n}`);

  // Per source: n, correct first, correct last and the headline max, as score() counts them.
  const rows = items.map((it) => ({ source: it.source, output: it.output, ...scoreResponse(it.output, it, SCORERS.huatuo) }));
  const summary = summarize(rows, 'max', { dropEmpty: true, scorer: 'huatuo' });
  let sourcesAgree = true;
  const sources = new Set([...Object.keys(py.score), ...Object.entries(summary.sources).filter(([, s]) => s.n > 0).map(([k]) => k)]);
  for (const source of sources) {
    const p = py.score[source];
    const s = summary.sources[source];
    const same = p !== undefined && s !== undefined && p[2] === s.n && p[1] === s.correct_first && p[3] === s.correct_last && p[0] === s.accuracy;
    if (!same) sourcesAgree = false;
    console.log(`  ${same ? 'same' : 'DIFF'} ${source}: python n=${p?.[2]} first=${p?.[1]} last=${p?.[3]} acc=${p?.[0]}; ours n=${s?.n} first=${s?.correct_first} last=${s?.correct_last} acc=${s?.accuracy} (dropped empty: ${s?.dropped_empty})`);
  }

  for (const d of disagreements.slice(0, 20)) console.log(JSON.stringify(d));
  if (disagreements.length) {
    const file = values.save ? `${values.save}.disagreements.json` : 'scorer-disagreements.json';
    writeFileSync(file, JSON.stringify(disagreements, null, 1));
    console.log(`${disagreements.length} disagreement(s) written to ${file}`);
  }
  return disagreements.length === 0 && sourcesAgree ? 0 : 1;
}

process.exitCode = main();
