/**
 * A case: one concrete patient drawn from a condition (age, sex, a risk factor, a
 * finding combination, the tests shown) plus the question asked and its phrasing.
 * Rendering a case gives the vignette and the question texts.
 */
import type { Rng } from '../../common/rng.ts';
import type { Condition } from './schema.ts';
import { capitalize, type QuestionTemplate, type QuestionType, type VignetteTemplate } from './templates.ts';

export interface Case {
  condition: Condition;
  type: QuestionType;
  /** Indices of the findings shown, sorted: the finding combination. */
  combo: number[];
  /** The same indices in the order they are told. */
  order: number[];
  /** Indices of the labs shown, in the order they are told. */
  labs: number[];
  age: number;
  ageUnit: 'month' | 'year';
  sex: 'female' | 'male';
  risk?: string;
  vignette: VignetteTemplate;
  question: QuestionTemplate;
}

/** Draws the patient details of a case; the combination and templates are chosen by the caller. */
export function drawCase(rng: Rng, c: Condition, type: QuestionType, combo: number[], vignette: VignetteTemplate, question: QuestionTemplate): Case {
  const [lo, hi] = c.age;
  let age: number;
  let ageUnit: 'month' | 'year';
  if (hi < 2) {
    ageUnit = 'month';
    const a = Math.max(1, Math.round(lo * 12));
    age = a + rng.int(Math.max(1, Math.round(hi * 12)) - a + 1);
  } else {
    ageUnit = 'year';
    const a = Math.max(1, Math.ceil(lo));
    age = a + rng.int(Math.floor(hi) - a + 1);
  }
  const sex = c.sex === 'any' ? rng.pick(['female', 'male'] as const) : c.sex;
  const risk = rng.next() < 0.7 ? rng.pick(c.risks) : undefined;
  const order = rng.shuffle([...combo]);
  // The key test (index 0) is the answer of a "test" question, so it is never shown there.
  const pool = c.labs.map((_, i) => i).filter((i) => type !== 'test' || i !== 0);
  const count = type === 'test' ? rng.int(Math.min(1, pool.length) + 1) : 1 + rng.int(Math.min(2, pool.length));
  const labs = rng.sample(pool, count);
  return { condition: c, type, combo: [...combo].sort((a, b) => a - b), order, labs, age, ageUnit, sex, risk, vignette, question };
}

/** "34-year-old woman", "3-month-old boy". */
export function who(k: Case): string {
  const noun = k.ageUnit === 'month' || k.age < 18 ? (k.sex === 'female' ? 'girl' : 'boy') : (k.sex === 'female' ? 'woman' : 'man');
  return `${k.age}-${k.ageUnit}-old ${noun}`;
}

/** "A 34-year-old woman", "An 18-year-old man". */
export function subject(k: Case): string {
  const n = k.age;
  const an = n === 8 || n === 11 || n === 18 || (n >= 80 && n <= 89);
  return `${an ? 'An' : 'A'} ${who(k)}`;
}

export function shownFindings(k: Case): string[] {
  return k.order.map((i) => k.condition.findings[i]);
}

export function shownLabs(k: Case): [string, string][] {
  return k.labs.map((i) => k.condition.labs[i]);
}

export function renderVignette(k: Case): string {
  return k.vignette.render({
    subject: subject(k), who: who(k), pronoun: k.sex === 'female' ? 'she' : 'he',
    risk: k.risk, findings: shownFindings(k), labs: shownLabs(k),
  });
}

function joinStem(vignette: string, stem: string): string {
  return vignette.endsWith('\n') ? `${vignette}\n${stem}` : `${vignette} ${stem}`;
}

export function mcqQuestion(k: Case): string {
  return joinStem(renderVignette(k), k.question.mcq);
}

export function openQuestion(k: Case): string {
  return joinStem(renderVignette(k), k.question.open);
}

/** The answer text a question type asks for. */
export function answerOf(c: Condition, type: QuestionType): string {
  switch (type) {
    case 'diagnosis': return c.name;
    case 'treatment': return capitalize(c.treatment);
    case 'mechanism': return capitalize(c.mechanism);
    case 'test': return capitalize(c.labs[0][0]);
  }
}
