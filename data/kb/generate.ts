/**
 * The seeded generator of the knowledge-base benchmark. From one seed it draws training
 * cases and renders each as an MCQ item (MedQA style), a verifiable problem and an SFT
 * item, in HuatuoGPT-o1's exact formats; and it draws two held-out evaluation sets:
 * unseen finding combinations (training phrasings) and unseen phrasings (training
 * combinations). Same options, same bytes.
 */
import { Rng } from '../../common/rng.ts';
import type { EvalFile, McqItem, SftItem, VerifiableItem } from '../formats.ts';
import { drawCase, mcqQuestion, openQuestion, renderVignette, type Case } from './cases.ts';
import { comboKey, splitCombos, type ComboSplit } from './combos.ts';
import { loadKb, selectConditions } from './load.ts';
import { buildOptions } from './options.ts';
import { reason, type CotStyle } from './reasoning.ts';
import type { Condition } from './schema.ts';
import { QUESTION_TYPES, questionTemplates, vignetteTemplates, type QuestionType } from './templates.ts';

export const EVAL_UNSEEN_FINDINGS = 'KB_unseen_findings_test';
export const EVAL_UNSEEN_PHRASING = 'KB_unseen_phrasing_test';

export interface KbGenOptions {
  seed: number;
  trainSize: number;
  /** Items per held-out evaluation source. */
  evalSize: number;
  cotStyle: CotStyle;
  /** Restrict to these specialties (all when empty or absent). */
  specialties?: readonly string[];
  /** Question types to ask (all when absent). */
  questionTypes?: readonly QuestionType[];
  /** Seed of the train / held-out split of finding combinations; keep it fixed across runs. */
  splitSeed?: number;
}

/** What each item was made from, for analysis and for the disjointness checks. */
export interface ItemMeta {
  condition: string;
  specialty: string;
  type: QuestionType;
  combo: string;
  vignetteTemplate: string;
  questionTemplate: string;
  vignette: string;
  hypothesis?: string;
  backtracked?: boolean;
}

export interface KbDataset {
  mcq: McqItem[];
  verifiable: VerifiableItem[];
  sft: SftItem[];
  eval: EvalFile;
  meta: { train: ItemMeta[]; eval: Record<string, ItemMeta[]> };
}

function metaOf(k: Case): ItemMeta {
  return {
    condition: k.condition.name, specialty: k.condition.specialty, type: k.type, combo: comboKey(k.condition.name, k.combo),
    vignetteTemplate: k.vignette.id, questionTemplate: k.question.id, vignette: renderVignette(k),
  };
}

function mcqItem(rng: Rng, k: Case, kb: readonly Condition[], byName: ReadonlyMap<string, Condition>): McqItem {
  const o = buildOptions(rng, k.condition, k.type, kb, byName);
  return { question: mcqQuestion(k), options: o.options, answer_idx: o.answer_idx, answer: o.answer };
}

/** Cycles through the conditions in a fresh shuffled order each round, so every condition is used evenly. */
function conditionCycle(rng: Rng, conditions: readonly Condition[]): () => Condition {
  let order: Condition[] = [];
  return () => {
    if (order.length === 0) order = rng.shuffle([...conditions]);
    return order.pop()!;
  };
}

export function validateOptions(o: KbGenOptions): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  };
  int('seed', o.seed, 0);
  int('train size', o.trainSize, 0);
  int('eval size', o.evalSize, 0);
  if (o.cotStyle !== 'full' && o.cotStyle !== 'brief') throw new Error(`cot style must be "full" or "brief", got "${o.cotStyle}"`);
  for (const t of o.questionTypes ?? []) if (!QUESTION_TYPES.includes(t)) throw new Error(`unknown question type "${t}"; choose from: ${QUESTION_TYPES.join(', ')}`);
}

/** Generates the whole dataset. `onProgress` is called every `every` items with (done, total). */
export function generateKb(o: KbGenOptions, onProgress?: (done: number, total: number) => void, every = 1000): KbDataset {
  validateOptions(o);
  const kb = loadKb();
  const byName = new Map(kb.map((c) => [c.name, c]));
  const conditions = selectConditions(o.specialties);
  const types = o.questionTypes?.length ? o.questionTypes : QUESTION_TYPES;
  const splits = new Map<string, ComboSplit>(conditions.map((c) => [c.name, splitCombos(c, o.splitSeed ?? 0)]));
  const root = new Rng(o.seed);
  const total = o.trainSize + 2 * o.evalSize;
  let done = 0;
  const tick = () => { done++; if (onProgress && (done % every === 0 || done === total)) onProgress(done, total); };

  const draw = (rng: Rng, next: () => Condition, heldOutCombos: boolean, heldOutPhrasing: boolean): Case => {
    const c = next();
    const type = rng.pick(types);
    const split = splits.get(c.name)!;
    const combo = rng.pick(heldOutCombos ? split.heldOut : split.train);
    return drawCase(rng, c, type, combo, rng.pick(vignetteTemplates(heldOutPhrasing)), rng.pick(questionTemplates(type, heldOutPhrasing)));
  };

  const out: KbDataset = { mcq: [], verifiable: [], sft: [], eval: {}, meta: { train: [], eval: {} } };
  const trainRng = root.fork('train');
  const nextTrain = conditionCycle(trainRng, conditions);
  for (let i = 0; i < o.trainSize; i++) {
    const k = draw(trainRng, nextTrain, false, false);
    out.mcq.push(mcqItem(trainRng, k, kb, byName));
    const r = reason(trainRng, k, byName, o.cotStyle);
    const open = openQuestion(k);
    out.verifiable.push({ 'Open-ended Verifiable Question': open, 'Ground-True Answer': out.mcq[i].answer });
    out.sft.push({ Question: open, Complex_CoT: r.cot, Response: r.response });
    out.meta.train.push({ ...metaOf(k), hypothesis: r.hypothesis, backtracked: r.backtracked });
    tick();
  }
  for (const [source, combos, phrasing] of [[EVAL_UNSEEN_FINDINGS, true, false], [EVAL_UNSEEN_PHRASING, false, true]] as const) {
    const rng = root.fork(source);
    const next = conditionCycle(rng, conditions);
    out.eval[source] = [];
    out.meta.eval[source] = [];
    for (let i = 0; i < o.evalSize; i++) {
      const k = draw(rng, next, combos, phrasing);
      out.eval[source].push(mcqItem(rng, k, kb, byName));
      out.meta.eval[source].push(metaOf(k));
      tick();
    }
  }
  return out;
}

/** The four files' contents, exactly as written to disk. */
export function serializeKb(d: KbDataset): { mcq: string; verifiable: string; sft: string; eval: string } {
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  return { mcq: json(d.mcq), verifiable: json(d.verifiable), sft: json(d.sft), eval: json(d.eval) };
}
