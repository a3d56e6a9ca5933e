/**
 * Loads the knowledge base from data/kb/conditions/*.ts and validates it as a whole:
 * every record against the schema, no duplicate names, every look-alike names a real
 * condition (not itself), and every condition keeps at least two tests whose results
 * differ from each of its look-alikes. Errors name the file and record number.
 */
import { Condition, SPECIALTIES, type Specialty } from './schema.ts';
import cardiology from './conditions/cardiology.ts';
import pulmonology from './conditions/pulmonology.ts';
import gastroenterology from './conditions/gastroenterology.ts';
import nephrology from './conditions/nephrology.ts';
import endocrinology from './conditions/endocrinology.ts';
import hematology from './conditions/hematology.ts';
import infectious_disease from './conditions/infectious_disease.ts';
import neurology from './conditions/neurology.ts';
import rheumatology from './conditions/rheumatology.ts';
import dermatology from './conditions/dermatology.ts';
import obstetrics_gynecology from './conditions/obstetrics_gynecology.ts';
import pediatrics from './conditions/pediatrics.ts';
import psychiatry from './conditions/psychiatry.ts';
import toxicology from './conditions/toxicology.ts';

const FILES: Record<Specialty, Condition[]> = {
  cardiology, pulmonology, gastroenterology, nephrology, endocrinology, hematology, infectious_disease,
  neurology, rheumatology, dermatology, obstetrics_gynecology, pediatrics, psychiatry, toxicology,
};

export class KbError extends Error {
  constructor(readonly problems: string[]) {
    super(`knowledge base is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ` + problems.join('\n  '));
    this.name = 'KbError';
  }
}

/** Where a record lives, for messages: data/kb/conditions/<file>.ts record N (1-based). */
function where(file: string, index: number, name?: string): string {
  return `data/kb/conditions/${file}.ts record ${index + 1}${name ? ` (${name})` : ''}`;
}

/** Validates a list of conditions grouped by file; returns the problems found (empty when valid). */
export function checkKb(files: Record<string, unknown[]>): string[] {
  const problems: string[] = [];
  const parsed: { c: Condition; at: string }[] = [];
  for (const [file, records] of Object.entries(files)) {
    records.forEach((raw, i) => {
      const r = Condition.safeParse(raw);
      if (!r.success) {
        for (const issue of r.error.issues) {
          problems.push(`${where(file, i, (raw as { name?: string })?.name)}: ${issue.path.join('.') || 'record'}: ${issue.message}`);
        }
      } else if (r.data.specialty !== file) {
        problems.push(`${where(file, i, r.data.name)}: specialty "${r.data.specialty}" does not match its file; move it to data/kb/conditions/${r.data.specialty}.ts`);
      } else parsed.push({ c: r.data, at: where(file, i, r.data.name) });
    });
  }
  const byName = new Map<string, { c: Condition; at: string }>();
  for (const p of parsed) {
    const key = p.c.name.toLowerCase();
    const seen = byName.get(key);
    if (seen) problems.push(`${p.at}: duplicate name, already defined at ${seen.at}; rename or merge them`);
    else byName.set(key, p);
  }
  for (const { c, at } of parsed) {
    const tests = new Set(c.labs.map(([t]) => t.toLowerCase()));
    if (tests.size !== c.labs.length) problems.push(`${at}: the same test is listed twice; keep one result per test`);
    const mine = new Set(c.labs.map((l) => l.join('|').toLowerCase()));
    if (new Set(c.lookAlikes).size !== c.lookAlikes.length) problems.push(`${at}: a look-alike is listed twice`);
    for (const name of c.lookAlikes) {
      const other = byName.get(name.toLowerCase());
      if (name.toLowerCase() === c.name.toLowerCase()) { problems.push(`${at}: lists itself as a look-alike`); continue; }
      if (!other) { problems.push(`${at}: look-alike "${name}" is not a condition of the knowledge base; add it or fix the spelling`); continue; }
      const theirs = new Set(other.c.labs.map((l) => l.join('|').toLowerCase()));
      const distinct = [...mine].filter((l) => !theirs.has(l)).length;
      if (distinct < 2) problems.push(`${at}: fewer than two tests tell it apart from look-alike "${name}"; add a discriminating test`);
    }
  }
  return problems;
}

let cached: Condition[] | undefined;

/** The whole validated knowledge base, in a fixed order (specialty order, then file order). Throws KbError when invalid. */
export function loadKb(): Condition[] {
  if (cached) return cached;
  const problems = checkKb(FILES);
  if (problems.length) throw new KbError(problems);
  cached = SPECIALTIES.flatMap((s) => FILES[s]);
  return cached;
}

/** Conditions of the given specialties (all when the list is empty or absent). Unknown names are an error. */
export function selectConditions(specialties?: readonly string[]): Condition[] {
  const kb = loadKb();
  if (!specialties || specialties.length === 0) return kb;
  const unknown = specialties.filter((s) => !(SPECIALTIES as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`unknown specialt${unknown.length === 1 ? 'y' : 'ies'} ${unknown.map((s) => `"${s}"`).join(', ')}; choose from: ${SPECIALTIES.join(', ')}`);
  return kb.filter((c) => specialties.includes(c.specialty));
}
