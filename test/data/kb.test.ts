/** The knowledge base itself: size, coverage, and the whole-base validator on good and broken data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkKb, loadKb, selectConditions } from '../../data/kb/load.ts';
import { SPECIALTIES, type Condition } from '../../data/kb/schema.ts';

const ROOT = join(import.meta.dirname, '..', '..');

test('the knowledge base has at least 150 conditions across at least 10 specialties', () => {
  const kb = loadKb();
  assert.ok(kb.length >= 150, `only ${kb.length} conditions`);
  const specialties = new Set(kb.map((c) => c.specialty));
  assert.ok(specialties.size >= 10, `only ${specialties.size} specialties`);
  for (const s of specialties) assert.ok(kb.filter((c) => c.specialty === s).length >= 5, `${s} has fewer than 5 conditions`);
});

test('every condition is complete: demographics, findings, two or more tests, look-alikes that exist, treatment, mechanism', () => {
  const kb = loadKb();
  const names = new Set(kb.map((c) => c.name));
  assert.equal(names.size, kb.length, 'duplicate condition names');
  for (const c of kb) {
    assert.ok(c.age[0] <= c.age[1] && c.risks.length >= 1, `${c.name}: demographics`);
    assert.ok(c.findings.length >= 5, `${c.name}: findings`);
    assert.ok(c.labs.length >= 2, `${c.name}: fewer than two tests`);
    assert.ok(c.lookAlikes.length >= 2, `${c.name}: look-alikes`);
    for (const l of c.lookAlikes) {
      assert.ok(names.has(l), `${c.name}: look-alike "${l}" is not in the knowledge base`);
      assert.notEqual(l, c.name);
      // At least two of this condition's test results differ from the look-alike's.
      const other = kb.find((o) => o.name === l)!;
      const theirs = new Set(other.labs.map((x) => x.join('|')));
      assert.ok(c.labs.filter((x) => !theirs.has(x.join('|'))).length >= 2, `${c.name} vs ${l}: tests do not tell them apart`);
    }
    assert.ok(c.treatment.length > 3 && c.mechanism.length > 3);
  }
});

test('the knowledge base files stay small (a few hundred KB at most)', () => {
  const dir = join(ROOT, 'data', 'kb', 'conditions');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.equal(files.length, SPECIALTIES.length, 'one file per specialty');
  const bytes = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  assert.ok(bytes < 400_000, `${bytes} bytes`);
});

const good = (over: Partial<Condition> = {}): Condition => ({
  name: 'Alpha', specialty: 'cardiology', age: [20, 40], sex: 'any', risks: ['smoking'],
  findings: ['f1', 'f2', 'f3', 'f4', 'f5'], labs: [['t1', 'r1'], ['t2', 'r2']],
  lookAlikes: ['Beta', 'Gamma'], treatment: 'rest', mechanism: 'a process', ...over,
});

test('the validator accepts a consistent base and names file and record of each problem', () => {
  const base = { cardiology: [good(), good({ name: 'Beta', lookAlikes: ['Alpha', 'Gamma'], labs: [['t3', 'r3'], ['t4', 'r4']] }), good({ name: 'Gamma', lookAlikes: ['Alpha', 'Beta'], labs: [['t5', 'r5'], ['t6', 'r6']] })] };
  assert.deepEqual(checkKb(base), []);

  const problems = checkKb({
    cardiology: [
      good(),
      good({ name: 'Beta', lookAlikes: ['Alpha', 'Delta'] }), // unknown look-alike; same labs as Alpha
      good({ name: 'alpha', lookAlikes: ['Beta', 'Gamma'] }), // duplicate (case-insensitive)
      { ...good({ name: 'Gamma' }), labs: [['t1', 'r1']] } as Condition, // one test only
    ],
    neurology: [good({ name: 'Epsilon' })], // specialty does not match the file
  });
  const text = problems.join('\n');
  assert.match(text, /cardiology\.ts record 2 \(Beta\): look-alike "Delta" is not a condition/);
  assert.match(text, /cardiology\.ts record 2 \(Beta\): fewer than two tests tell it apart from look-alike "Alpha"/);
  assert.match(text, /cardiology\.ts record 3 \(alpha\): duplicate name, already defined at data\/kb\/conditions\/cardiology\.ts record 1/);
  assert.match(text, /cardiology\.ts record 4 \(Gamma\): labs: .*2/);
  assert.match(text, /neurology\.ts record 1 \(Epsilon\): specialty "cardiology" does not match its file/);
});

test('the validator rejects phrases with a final period and a look-alike naming itself', () => {
  const problems = checkKb({ cardiology: [good({ treatment: 'rest.' }), good({ name: 'Beta', lookAlikes: ['Beta', 'Alpha'] })] });
  assert.ok(problems.some((p) => /record 1 \(Alpha\): treatment: a short phrase/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /record 2 \(Beta\): lists itself/.test(p)), problems.join('\n'));
});

test('selecting specialties filters the base and rejects unknown names with the valid ones', () => {
  const cardio = selectConditions(['cardiology']);
  assert.ok(cardio.length > 0 && cardio.every((c) => c.specialty === 'cardiology'));
  assert.equal(selectConditions([]).length, loadKb().length);
  assert.throws(() => selectConditions(['cardiology', 'astrology']), /unknown specialty "astrology"; choose from: cardiology/);
});
