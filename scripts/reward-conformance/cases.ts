/**
 * The inputs of test/fixtures/reward-conformance.jsonl: cases on which the reward and verifiers of
 * data/reward.ts, rl/score.ts and data/verifiers.ts and those of python/doctor_agent_trl must agree.
 * Many are chosen where JavaScript and Python differ by default: whitespace sets (U+FEFF, U+0085,
 * U+001C), \b and \w (ASCII in a JavaScript RegExp without the u flag), the key order of objects
 * (array-index keys first), UTF-16 lengths, toFixed's ties, number and JSON formatting.
 * Characters are kept within Unicode 14 (Python 3.11's unicodedata).
 */
import type { RewardMapping } from '../../data/reward.ts';

export const CLASSIFIER = 'test/fixtures/parity/qwen2-seqcls';
export const QWEN2_LM = 'test/fixtures/parity/qwen2-f32';
export const LLAMA_LM = 'test/fixtures/parity/llama-f32';

/** Option entries in the order an item's JSON lists them (JavaScript objects put array-index keys first). */
type Options = [string, string][];
const o = (obj: Record<string, string>): Options => Object.entries(obj);

export interface RewardCase { id: string; kind: 'reward'; response: string; reference: string; question?: string; aliases?: string[][]; verdict?: boolean; mapping?: RewardMapping }
export interface RuleCase { id: string; kind: 'rule'; response: string; reference: string; options?: Options; aliases?: string[][] }
export interface ThresholdCase { id: string; kind: 'threshold'; p: number; threshold?: number }
export interface LlmCase { id: string; kind: 'llm'; judge: string; response: string; reference: string; question?: string; options?: Options; reply: string }
export interface LogprobCase { id: string; kind: 'logprob'; judge: string; response: string; reference: string; question?: string; options?: Options; reply: { text: string; logprobs: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[] } }
export interface ClassifierCase { id: string; kind: 'classifier'; model: string; response: string | null; reference: string; maxLength?: number; threshold?: number }
export interface CausalLmCase { id: string; kind: 'causal_lm'; model: string; response: string; reference: string; question?: string; options?: Options; threshold?: number }

export type Case = RewardCase | RuleCase | ThresholdCase | LlmCase | LogprobCase | ClassifierCase | CausalLmCase;

const T = '## Thinking\n\nCollagen synthesis needs ascorbate.\n\n';
const F = '## Final Response\n\n';
const wrap = (answer: string) => `${T}${F}${answer}`;

const reward: Omit<RewardCase, 'kind'>[] = [
  { id: 'well-formed-correct', response: wrap('Vitamin C deficiency.'), reference: 'Vitamin C' },
  { id: 'well-formed-wrong', response: wrap('Iron deficiency.'), reference: 'Vitamin C' },
  { id: 'final-response-colon-no-blank-line', response: `${T}## Final Response:\nVitamin C`, reference: 'Vitamin C' },
  { id: 'final-response-one-newline', response: `${T}## Final Response\nVitamin C`, reference: 'Vitamin C' },
  { id: 'final-response-crlf', response: `${T}## Final Response\r\n\r\nVitamin C`, reference: 'Vitamin C' },
  { id: 'thinking-twice', response: `${T}## Thinking\n\nagain\n\n${F}Vitamin C`, reference: 'Vitamin C' },
  { id: 'no-thinking', response: `${F}Vitamin C`, reference: 'Vitamin C' },
  { id: 'final-response-twice', response: `${wrap('Vitamin C')}\n\n${F}Iron`, reference: 'Vitamin C' },
  { id: 'second-final-response-without-blank-line', response: `${wrap('Vitamin C.')}\n## Final Response\nmore`, reference: 'Vitamin C' },
  { id: 'thinking-inside-longer-heading', response: `${T}## Thinking process\n\n${F}C`, reference: 'C' },
  { id: 'thinking-inside-h3-heading', response: `### Thinking\n\nx\n\n${F}Vitamin C`, reference: 'Vitamin C' },
  { id: 'final-response-inside-h4-heading', response: `${T}#### Final Response\n\nVitamin C`, reference: 'Vitamin C' },
  { id: 'headings-run-together', response: `## Thinking## Thinking\n\n${F}Vitamin C`, reference: 'Vitamin C' },
  { id: 'thinking-without-blank-line', response: `## Thinking x\n${F}Vitamin C`, reference: 'Vitamin C' },
  { id: 'final-response-extra-blank-lines', response: `${T}## Final Response\n\n\n\n  Vitamin C\n\n`, reference: 'Vitamin C' },
  { id: 'final-response-before-thinking', response: `${F}Vitamin C\n\n## Thinking\n\nbecause`, reference: 'Vitamin C' },
  { id: 'thinking-in-final-response-text', response: `${wrap('Vitamin C')}\n## Thinking more`, reference: 'Vitamin C' },
  { id: 'empty-text', response: '', reference: 'Vitamin C' },
  { id: 'empty-final-response', response: wrap('  \n\t '), reference: 'Vitamin C' },
  { id: 'heading-at-end', response: `${T}${F}`, reference: 'Vitamin C' },
  { id: 'bom-around-final-response', response: wrap('\ufeffVitamin C\ufeff'), reference: 'Vitamin C' },
  { id: 'nel-around-final-response', response: wrap('\x85Vitamin C\x85'), reference: 'Vitamin C' },
  { id: 'file-separator-around-final-response', response: wrap('\x1c\x1dVitamin C\x1e\x1f'), reference: 'Vitamin C' },
  { id: 'nbsp-ideographic-space-line-separators', response: wrap('\u00a0\u3000\u2028Vitamin C\u2029\u202f\u205f'), reference: 'Vitamin C' },
  { id: 'vertical-tab-form-feed-cr', response: wrap('\v\f\rVitamin C\r\f\v'), reference: 'Vitamin C' },
  { id: 'zero-width-space-is-not-whitespace', response: wrap('\u200bVitamin C\u200b'), reference: 'Vitamin C' },
  { id: 'mongolian-vowel-separator-is-not-whitespace', response: wrap('\u180eVitamin C'), reference: 'Vitamin C' },
  { id: 'malformed-judged-after-last-heading-js-trim', response: `${T}## Final Response\nIron\n## Final Response\n \ufeffVitamin C\ufeff `, reference: 'Vitamin C' },
  { id: 'malformed-nel-kept-by-js-trim', response: `## Final Response\n\n\x85Vitamin C\x85`, reference: 'Vitamin C' },
  { id: 'malformed-no-heading-whole-text-judged', response: '  Vitamin C  ', reference: 'Vitamin C' },
  { id: 'final-response-with-emoji-and-astral', response: wrap('Vitamin C 💊 𝐂'), reference: 'Vitamin C' },
  { id: 'aliases-in-reward', response: wrap('An acute MI.'), reference: 'Myocardial infarction', aliases: [['myocardial infarction', 'MI', 'heart attack']] },
  { id: 'question-passed-to-verifier', response: wrap('Scurvy'), reference: 'Scurvy', question: 'Which disease does vitamin C deficiency cause?' },
  { id: 'fixed-verdict-correct', response: wrap('anything'), reference: 'x', verdict: true },
  { id: 'fixed-verdict-wrong', response: wrap('anything'), reference: 'x', verdict: false },
  { id: 'fixed-verdict-malformed-correct', response: 'no headings', reference: 'x', verdict: true },
  { id: 'custom-mapping-correct', response: wrap('x'), reference: 'x', verdict: true, mapping: { correct: 2, wrong: -1, malformed: -3 } },
  { id: 'custom-mapping-wrong', response: wrap('x'), reference: 'x', verdict: false, mapping: { correct: 2, wrong: -1, malformed: -3 } },
  { id: 'custom-mapping-malformed', response: `${F}x`, reference: 'x', verdict: true, mapping: { correct: 2, wrong: -1, malformed: -3 } },
  { id: 'custom-mapping-fractions', response: wrap('x'), reference: 'x', verdict: false, mapping: { correct: 0.75, wrong: 0.3333333333333333, malformed: -0.5 } },
];

const O3 = o({ A: 'Folate deficiency', B: 'Iron deficiency', C: 'Parvovirus B19 infection' });
const MI = [['myocardial infarction', 'MI', 'heart attack']];

const rule: Omit<RuleCase, 'kind'>[] = [
  { id: 'normalise-case-punctuation-articles', response: '  The  Parvovirus-B19 infection. ', reference: 'parvovirus b19 infection' },
  { id: 'normalise-accents-and-curly-apostrophe', response: 'Ménière’s disease', reference: "Meniere's disease" },
  { id: 'normalise-decomposed-accent', response: 'Sjo\u0308gren syndrome', reference: 'Sjögren syndrome' },
  { id: 'normalise-full-width', response: 'ＡＮ Ｘ－ray', reference: 'X ray' },
  { id: 'normalise-ligature', response: 'Pulmonary ﬁbrosis', reference: 'pulmonary fibrosis' },
  { id: 'normalise-subscript-digit', response: 'CO₂ retention', reference: 'CO2 retention' },
  { id: 'normalise-greek-final-sigma', response: 'ΟΔΟΣ', reference: 'οδοσ' },
  { id: 'normalise-sharp-s-is-not-ss', response: 'Straße', reference: 'strasse' },
  { id: 'normalise-dotted-capital-i', response: 'İNFARCT', reference: 'infarct' },
  { id: 'normalise-symbols', response: '≥ 140 mmHg + 5% $', reference: '140 mmHg 5' },
  { id: 'normalise-article-after-non-ascii-letter', response: 'øa sign', reference: 'ø sign' },
  { id: 'normalise-article-next-to-digit-kept', response: '5a fracture', reference: '5 fracture' },
  { id: 'normalise-underscore-is-punctuation', response: 'a_b', reference: 'b' },
  { id: 'normalise-bom-is-whitespace-inside', response: 'vitamin\ufeffc', reference: 'Vitamin C' },
  { id: 'normalise-file-separator-is-not-whitespace-inside', response: 'vitamin\x1cc', reference: 'Vitamin C' },
  { id: 'normalise-nel-is-not-whitespace-inside', response: 'vitamin\x85c', reference: 'Vitamin C' },
  { id: 'normalise-emoji-symbol', response: 'Vitamin💊C', reference: 'Vitamin C' },
  { id: 'contained-in-longer-answer', response: 'The most likely diagnosis is Parvovirus B19 infection.', reference: 'Parvovirus B19 infection' },
  { id: 'wrong-answer', response: 'Iron deficiency', reference: 'Parvovirus B19 infection' },
  { id: 'partial-word-is-not-contained', response: 'B19', reference: 'Parvovirus B19 infection' },
  { id: 'empty-response', response: '', reference: 'MI' },
  { id: 'bom-only-response-is-empty', response: '\ufeff \u3000', reference: 'MI' },
  { id: 'nel-only-response-is-not-empty', response: '\x85', reference: 'MI' },
  { id: 'punctuation-only-both', response: '!!!', reference: '...' },
  { id: 'alias-acute-mi', response: 'An acute MI.', reference: 'Myocardial infarction', aliases: MI },
  { id: 'alias-heart-attack-for-mi', response: 'heart attack', reference: 'MI', aliases: MI },
  { id: 'alias-wrong', response: 'angina', reference: 'MI', aliases: MI },
  { id: 'alias-chain-in-order', response: 'heart attack', reference: 'MI', aliases: [['MI', 'myocardial infarction'], ['myocardial infarction', 'heart attack']] },
  { id: 'alias-chain-out-of-order', response: 'heart attack', reference: 'MI', aliases: [['myocardial infarction', 'heart attack'], ['MI', 'myocardial infarction']] },
  { id: 'alias-first-found-in-order', response: 'heart attack, also called myocardial infarction', reference: 'MI', aliases: MI },
  { id: 'option-letter-alone', response: 'C', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-parenthesised', response: '(C)', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-dot', response: 'C.', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-paren', response: 'C)', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-colon-text', response: 'B: Iron deficiency', reference: 'C', options: O3 },
  { id: 'option-letter-lowercase-is-not-a-letter', response: 'c', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-comma-is-not-committed', response: 'C, because of the crisis', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-bom-before', response: '\ufeffC', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-letter-nel-after', response: 'C\x85', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'answer-is-parenthesised', response: 'The answer is (C).', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'answer-is-colon', response: 'So the answer is: B', reference: 'C', options: O3 },
  { id: 'answer-would-be', response: 'The answer would be C', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'answer-is-article-not-option-a', response: 'The answer is a parvovirus B19 infection', reference: 'C', options: O3 },
  { id: 'answer-is-letter-then-word-char', response: 'The answer is Cb', reference: 'C', options: O3 },
  { id: 'answer-is-letter-then-underscore', response: 'The answer is C_', reference: 'C', options: O3 },
  { id: 'answer-is-letter-then-accented', response: 'The answer is Cé', reference: 'C', options: O3 },
  { id: 'option-word', response: 'Option C', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'option-word-parenthesised-lower', response: 'option (B)', reference: 'C', options: O3 },
  { id: 'option-text-reference-letter', response: 'Parvovirus B19 infection', reference: 'C', options: O3 },
  { id: 'option-letter-and-text', response: 'C. Parvovirus B19 infection', reference: 'C', options: O3 },
  { id: 'reference-letter-parenthesised', response: 'Parvovirus B19 infection', reference: '(C)', options: O3 },
  { id: 'reference-letter-lowercase-dot', response: 'Parvovirus B19 infection', reference: 'c.', options: O3 },
  { id: 'reference-letter-not-an-option', response: 'E', reference: 'E', options: O3 },
  { id: 'wrong-letter', response: 'the answer is B', reference: 'C', options: O3 },
  { id: 'letter-against-text-reference', response: 'B', reference: 'Parvovirus B19 infection', options: O3 },
  { id: 'names-other-options-too', response: 'Either iron deficiency or parvovirus B19 infection', reference: 'C', options: O3 },
  { id: 'empty-options-object', response: 'C', reference: 'C', options: [] },
  {
    id: 'array-index-keys-come-first', reference: 'A',
    response: 'either parvovirus, iron deficiency, folate deficiency or b12 deficiency',
    options: [['B', 'Iron deficiency'], ['10', 'Folate deficiency'], ['2', 'B12 deficiency'], ['A', 'Parvovirus']],
  },
  { id: 'reference-numeric-key', response: 'B12 deficiency', reference: '2', options: [['2', 'B12 deficiency'], ['1', 'Iron deficiency'], ['01', 'Zinc deficiency']] },
  { id: 'reference-astral-is-two-utf16-units', response: 'Iron deficiency', reference: '𝐀', options: o({ '𝐀': 'Iron deficiency', B: 'Folate deficiency' }) },
  { id: 'option-text-with-article-and-accent', response: 'The Ménière disease', reference: 'B', options: o({ A: 'Vestibular neuritis', B: 'Meniere disease' }) },
];

const threshold: Omit<ThresholdCase, 'kind'>[] = [
  { id: 'p-equal-to-threshold-is-wrong', p: 0.4 },
  { id: 'p-just-above', p: 0.4000001 },
  { id: 'p-just-below', p: 0.3999999 },
  { id: 'p-high', p: 0.9 },
  { id: 'p-zero', p: 0 },
  { id: 'p-one', p: 1 },
  { id: 'to-fixed-tie-rounds-up-0.0625', p: 0.0625 },
  { id: 'to-fixed-tie-rounds-up-0.3125', p: 0.3125 },
  { id: 'to-fixed-tie-0.4375-at-own-threshold', p: 0.4375, threshold: 0.4375 },
  { id: 'to-fixed-near-tie-0.0005', p: 0.0005 },
  { id: 'threshold-integer-one', p: 0.99, threshold: 1 },
  { id: 'threshold-tiny-exponent', p: 0.5, threshold: 1e-7 },
  { id: 'threshold-small-plain-decimal', p: 0.000001, threshold: 0.00001 },
  { id: 'threshold-zero', p: 0.0001, threshold: 0 },
];

const llm: Omit<LlmCase, 'kind' | 'judge'>[] = [
  { id: 'true', response: 'Parvovirus B19', reference: 'Parvovirus B19 infection', question: 'What causes it?', reply: 'True' },
  { id: 'false-with-dot', response: 'Iron deficiency', reference: 'Parvovirus B19 infection', reply: 'False.' },
  { id: 'neither', response: 'Something', reference: 'X', reply: 'I am not sure' },
  { id: 'upper-case', response: 'MI', reference: 'Myocardial infarction', reply: 'TRUE' },
  { id: 'first-word-decides', response: 'MI', reference: 'Angina', reply: 'It is false; true would be wrong' },
  { id: 'untrue-is-no-word', response: 'MI', reference: 'Angina', reply: 'untrue' },
  { id: 'underscore-is-a-word-character', response: 'MI', reference: 'MI', reply: 'True_' },
  { id: 'accent-is-a-boundary', response: 'MI', reference: 'MI', reply: 'trueé' },
  { id: 'options-in-prompt-array-index-keys-first', response: 'B', reference: 'A', question: 'Pick one.', options: [['B', 'Iron'], ['2', 'B12'], ['A', 'Folate'], ['1', 'Zinc'], ['4294967295', 'not an array index'], ['4294967294', 'the last array index']], reply: 'False' },
  { id: 'empty-options-and-empty-question', response: 'x', reference: 'y', question: '', options: [], reply: 'false' },
  { id: 'unicode-and-control-characters', response: 'Ménière 💊 \u2028 \x01 "quoted" \\ \ufeff \x7f', reference: '心脏\ttab', reply: 'True' },
  { id: 'lone-surrogate', response: 'broken \ud83d text', reference: 'x', reply: 'False' },
  { id: 'long-reply-cut-to-80', response: 'x', reference: 'y', reply: 'Let me explain "carefully":\nthe response\tdiffers in many ways, so I cannot say; maybe, maybe not. Really.' },
  { id: 'reply-cut-inside-surrogate-pair', response: 'x', reference: 'y', reply: `${'a'.repeat(79)}💊 and more` },
];

const lp = (pTrue: number, pFalse: number, lead = 'True', other = ' False') => ({
  text: pTrue > pFalse ? 'True' : 'False',
  logprobs: [{ token: pTrue > pFalse ? 'True' : 'False', logprob: Math.log(Math.max(pTrue, pFalse)), top_logprobs: [{ token: lead, logprob: Math.log(pTrue) }, { token: other, logprob: Math.log(pFalse) }, { token: 'Maybe', logprob: Math.log(0.01) }] }],
});

const logprob: Omit<LogprobCase, 'kind' | 'judge'>[] = [
  { id: 'one-third', response: 'x', reference: 'y', reply: lp(0.3, 0.6) },
  { id: 'just-above-half', response: 'Parvovirus B19', reference: 'Parvovirus B19 infection', question: 'Cause?', options: o({ A: 'Iron', B: 'Parvovirus B19 infection' }), reply: lp(0.5, 0.45) },
  { id: 'spaced-upper-case-tokens', response: 'x', reference: 'y', reply: lp(0.7, 0.2, ' TRUE', '\tfalse ') },
  { id: 'neither-token', response: 'x', reference: 'y', reply: lp(0.7, 0.2, 'Yes', 'No') },
];

const classifier: Omit<ClassifierCase, 'kind' | 'model'>[] = [
  { id: 'vitamin-c', response: 'Vitamin C deficiency.', reference: 'Vitamin C' },
  { id: 'no-answer-text', response: 'I do not know the answer.', reference: 'Parvovirus B19 infection' },
  { id: 'malformed-null-response', response: null, reference: 'Parvovirus B19 infection' },
  { id: 'long-sentence', response: 'The most likely diagnosis is acute myocardial infarction; start aspirin 300 mg.', reference: 'Myocardial infarction' },
  { id: 'unicode', response: 'Dose: 5 µg/kg ≥ 3 times daily; 心脏', reference: 'B. Digoxin' },
  { id: 'truncated-to-40-tokens', response: 'Vitamin C deficiency.', reference: 'Vitamin C', maxLength: 40 },
  { id: 'own-threshold', response: 'Iron deficiency', reference: 'Vitamin C', threshold: 0.6 },
];

const causal: Omit<CausalLmCase, 'kind' | 'model'>[] = [
  { id: 'with-question', response: 'Parvovirus B19 infection', reference: 'Parvovirus B19 infection', question: 'What causes aplastic crisis in sickle cell disease?' },
  { id: 'plain', response: 'Iron deficiency', reference: 'Parvovirus B19 infection' },
  { id: 'options', response: 'The answer is C.', reference: 'Folate deficiency', options: o({ A: 'Iron deficiency', B: 'B12 deficiency', C: 'Folate deficiency' }) },
  { id: 'short', response: 'MI', reference: 'Myocardial infarction' },
  { id: 'unicode', response: 'Ménière’s disease 💊', reference: 'Meniere disease', threshold: 0.3 },
  {
    id: 'longer-than-the-context-keeps-its-end', response: 'heart attack', reference: 'myocardial infarction',
    question: 'A 60-year-old man has crushing chest pain radiating to the left arm, sweating and nausea for two hours; the ECG shows ST elevation in II, III and aVF and troponin is raised. What is the diagnosis?',
  },
];

export const CASES: Case[] = [
  ...reward.map((c): Case => ({ ...c, kind: 'reward' })),
  ...rule.map((c): Case => ({ ...c, kind: 'rule' })),
  ...threshold.map((c): Case => ({ ...c, kind: 'threshold' })),
  ...llm.map((c): Case => ({ ...c, kind: 'llm', judge: 'judge-7b' })),
  ...logprob.map((c): Case => ({ ...c, kind: 'logprob', judge: 'verifier-3b' })),
  ...classifier.map((c): Case => ({ ...c, kind: 'classifier', model: CLASSIFIER })),
  ...causal.map((c): Case => ({ ...c, kind: 'causal_lm', model: QWEN2_LM })),
  ...causal.slice(0, 3).map((c): Case => ({ ...c, kind: 'causal_lm', model: LLAMA_LM })),
].map((c) => ({ ...c, id: `${c.kind}/${c.id}${c.kind === 'causal_lm' ? `@${c.model.split('/').pop()}` : ''}` }));
