/**
 * The thinking and final answer of an SFT item, reasoning the way the recipe's
 * Complex_CoT does: a first hypothesis (often a look-alike on purpose), the findings
 * checked against it, backtracking when a result contradicts it ("But wait, ..."),
 * then a verified conclusion that names the answer. `brief` keeps it short enough
 * (at most BRIEF_MAX_WORDS words) for a tiny model to learn.
 */
import type { Rng } from '../../common/rng.ts';
import { answerOf, shownFindings, shownLabs, who, type Case } from './cases.ts';
import type { Condition } from './schema.ts';
import { capitalize, listText } from './templates.ts';

export type CotStyle = 'full' | 'brief';
export const BRIEF_MAX_WORDS = 80;
/** Share of items whose first hypothesis is a look-alike (when the case allows a contradiction). */
export const WRONG_FIRST_SHARE = 0.6;

export interface Reasoning {
  cot: string;
  response: string;
  /** The condition considered first. */
  hypothesis: string;
  /** Whether the first hypothesis was abandoned after a contradiction. */
  backtracked: boolean;
}

type Evidence = { kind: 'lab'; mine: [string, string]; theirs: [string, string] } | { kind: 'finding'; finding: string };

const lower = (s: string) => s.toLowerCase();

/**
 * Something shown in the case that the other condition would not produce. A key test
 * (one of the first two listed) is the strongest evidence, then a finding the other
 * condition lacks, then any other differing test.
 */
function contradiction(k: Case, other: Condition): Evidence | undefined {
  const c = k.condition;
  const theirLabs = new Set(other.labs.map((l) => lower(l.join('|'))));
  const differing = [...k.labs].sort((a, b) => a - b).filter((i) => !theirLabs.has(lower(c.labs[i].join('|'))));
  const asLab = (i: number): Evidence => {
    const mine = c.labs[i];
    const same = other.labs.find(([t]) => lower(t) === lower(mine[0]));
    return { kind: 'lab', mine, theirs: same ?? other.labs[0] };
  };
  // Weak: the other condition has the same test with an overlapping result ("raised" vs "raised with neutrophilia").
  const weak = (i: number) => other.labs.some(([t, r]) => lower(t) === lower(c.labs[i][0]) &&
    (lower(r).includes(lower(c.labs[i][1])) || lower(c.labs[i][1]).includes(lower(r))));
  const key = differing.find((i) => i <= 1 && !weak(i));
  if (key !== undefined) return asLab(key);
  const theirFindings = new Set(other.findings.map(lower));
  const finding = shownFindings(k).find((f) => !theirFindings.has(lower(f)));
  if (finding) return { kind: 'finding', finding };
  const strong = differing.find((i) => !weak(i));
  return strong !== undefined ? asLab(strong) : undefined;
}

function demographics(c: Condition): string {
  const people = c.sex === 'female' ? 'women and girls' : c.sex === 'male' ? 'men and boys' : 'people';
  const [lo, hi] = c.age;
  const band = hi < 2
    ? `${Math.max(1, Math.round(lo * 12))} to ${Math.max(1, Math.round(hi * 12))} months old`
    : `aged about ${Math.max(1, Math.round(lo))} to ${Math.round(hi)}`;
  return `${people} ${band}${c.risks.length ? `, especially with ${c.risks[0]}` : ''}`;
}

function responseSentence(k: Case): string {
  const c = k.condition;
  switch (k.type) {
    case 'diagnosis': return `The most likely diagnosis is ${c.name}.`;
    case 'treatment': return `This is ${c.name}, and the first-line treatment is ${c.treatment}.`;
    case 'mechanism': return `This is ${c.name}, and the underlying mechanism is ${c.mechanism}.`;
    case 'test': return `This is most likely ${c.name}, and the best test to confirm it is ${c.labs[0][0]}.`;
  }
}

function questionStep(k: Case, rival: Condition): string {
  const c = k.condition;
  switch (k.type) {
    case 'diagnosis': return `So the diagnosis is ${c.name}.`;
    case 'treatment': return `Now the question is about treatment. For ${c.name}, the first-line choice is ${c.treatment}.`;
    case 'mechanism': return `Now the question is about mechanism. ${c.name} comes from ${c.mechanism}.`;
    case 'test': return `Now the question is how to confirm it. The test that best sets ${c.name} apart from ${rival.name} is ${c.labs[0][0]}, which should show ${c.labs[0][1]}.`;
  }
}

function labPhrase([t, r]: [string, string]): string {
  return `${t} showing ${r}`;
}

function words(s: string): number {
  return s.split(/\s+/).filter(Boolean).length;
}

export function reason(rng: Rng, k: Case, byName: ReadonlyMap<string, Condition>, style: CotStyle): Reasoning {
  const c = k.condition;
  const answer = answerOf(c, k.type);
  const lookAlikes = c.lookAlikes.map((n) => byName.get(n)!);
  const rival = rng.pick(lookAlikes);
  const against = contradiction(k, rival);
  const wrongFirst = against !== undefined && rng.next() < WRONG_FIRST_SHARE;
  const findings = shownFindings(k);
  const labs = shownLabs(k);
  const hook = rng.pick(findings);
  const args = { k, c, rival, against, findings, labs, hook, answer };
  const cot = style === 'full' ? fullCot(rng, args, wrongFirst) : briefCot(args, wrongFirst);
  const response = style === 'full'
    ? `${capitalize(listText(findings.slice(0, 2)))}${labs.length ? `, with ${labPhrase(labs[0])},` : ''} fit ${c.name} better than ${rival.name}. ${responseSentence(k)}`
    : responseSentence(k);
  return { cot, response, hypothesis: wrongFirst ? rival.name : c.name, backtracked: wrongFirst };
}

interface Args {
  k: Case; c: Condition; rival: Condition; against?: Evidence;
  findings: string[]; labs: [string, string][]; hook: string; answer: string;
}

function fullCot(rng: Rng, a: Args, wrongFirst: boolean): string {
  const { k, c, rival, against, findings, labs, hook, answer } = a;
  const p: string[] = [];
  const person = who(k);
  let open = rng.pick([
    `Let me work through this. We have a ${person} with ${listText(findings)}.`,
    `Okay, so this is a ${person} presenting with ${listText(findings)}.`,
    `Alright, a ${person} with ${listText(findings)}. Let me think about what ties these together.`,
  ]);
  if (labs.length) open += ` The tests give ${listText(labs.map(labPhrase))}.`;
  if (k.risk) open += ` In the background there is ${k.risk}.`;
  p.push(open);
  if (wrongFirst && against) {
    p.push(rng.pick([
      `My first thought is ${rival.name}, since ${hook} can show up there as well. Let me check the rest of the picture against it.`,
      `The ${hook} makes me think of ${rival.name} first. Let me check whether everything else fits that.`,
      `At first glance this looks like ${rival.name}, because of the ${hook}. Let me check that idea against the other findings.`,
    ]));
    const wait = against.kind === 'lab'
      ? `But wait, ${against.mine[0]} shows ${against.mine[1]}. With ${rival.name} I would expect ${against.theirs[0]} to show ${against.theirs[1]} instead.`
      : `But wait, ${against.finding} is not part of the usual picture of ${rival.name}.`;
    p.push(`${wait} That does not fit, so ${rival.name} is not the answer here, and I need to step back.`);
    const support = against.kind === 'lab' ? ` and ${labPhrase(against.mine)}` : '';
    p.push(rng.pick([
      `Let me reconsider. ${c.name} would explain ${listText(findings.slice(0, 2))}${support}.`,
      `So what accounts for all of it? ${c.name} explains ${listText(findings.slice(0, 2))}${support}.`,
    ]));
  } else {
    p.push(rng.pick([
      `My first thought is ${c.name}, because the ${hook} is typical of it.`,
      `This looks like ${c.name} to me, mainly because of the ${hook}.`,
    ]));
    const check = labs.length
      ? `Let me check that. ${capitalize(labPhrase(labs[0]))} is what ${c.name} produces.`
      : `Let me check that. ${capitalize(listText(findings.filter((f) => f !== hook).slice(0, 2)))} also fit ${c.name}.`;
    const alt = ` Could it be ${rival.name} instead? ` + (
      against?.kind === 'lab' ? `With ${rival.name}, ${against.theirs[0]} would show ${against.theirs[1]}, which is not what we see, so ${c.name} still holds.`
      : against?.kind === 'finding' ? `${capitalize(against.finding)} is not part of its usual picture, so ${c.name} still holds.`
      : `It shares some features, but ${c.name} explains more of what is shown here, so ${c.name} still holds.`);
    p.push(check + alt);
  }
  p.push(`To verify: ${c.name} typically affects ${demographics(c)}, and this patient is a ${person}${k.risk ? ` with ${k.risk}` : ''}. The underlying process is ${c.mechanism}, which explains the findings.`);
  p.push(`${questionStep(k, rival)} So the answer is: ${answer}.`);
  return p.join('\n\n');
}

function briefCot(a: Args, wrongFirst: boolean): string {
  const { k, c, rival, against, findings, labs, answer } = a;
  const label = { diagnosis: 'Answer', treatment: 'First-line treatment', mechanism: 'Mechanism', test: 'Confirming test' }[k.type];
  const build = (nFindings: number, withLab: boolean, short: boolean): string => {
    const shown = findings.slice(0, nFindings);
    const lab = withLab && labs.length ? `; ${labs[0][0]}: ${labs[0][1]}` : '';
    const head = `${capitalize(who(k))} with ${listText(shown)}${lab}.`;
    const tail = `So it is ${c.name}. ${label}: ${answer}.`;
    if (wrongFirst && against) {
      let check: string;
      if (against.kind === 'finding') check = `${against.finding} is not typical of ${rival.name}`;
      else if (short) check = `${against.mine[0]} is ${against.mine[1]}, unlike ${rival.name}`;
      else {
        const expected = lower(against.theirs[0]) === lower(against.mine[0]) ? '' : `${against.theirs[0]}: `;
        check = `${against.mine[0]} is ${against.mine[1]}, but ${rival.name} would give ${expected}${against.theirs[1]}`;
      }
      return `${head} First guess: ${rival.name}. Check: ${check}. But wait, that rules out ${rival.name}.${short ? '' : ` Rethink: ${c.name} fits.`} ${tail}`;
    }
    return `${head} First guess: ${c.name}. Check: the findings fit ${c.name}, not ${rival.name}. Verified. ${tail}`;
  };
  const levels = [[2, true, false], [2, false, false], [1, false, false], [1, false, true]] as const;
  for (const [n, lab, short] of levels) {
    const text = build(n, lab, short);
    if (words(text) <= BRIEF_MAX_WORDS) return text;
  }
  return build(1, false, true);
}
