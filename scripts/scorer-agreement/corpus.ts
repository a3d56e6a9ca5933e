/**
 * An adversarial corpus of model outputs for comparing the `huatuo` scorer with
 * HuatuoGPT-o1's scorer.py: "answer is" forms, lone letters between every class of
 * neighbouring character (ASCII, CJK inside and outside U+4E00–U+9FFF, other scripts' letters,
 * Unicode digits and numbers, combining marks, spaces Python and JavaScript disagree on),
 * option texts and their near misses (for the similarity rule, around difflib's 200-character
 * autojunk threshold), the "## Final Response" cut, empty outputs, and items with 2 to 14
 * options, built from the questions and options of an evaluation file.
 */
import { Rng } from '../../common/rng.ts';
import type { McqItem } from '../../data/formats.ts';

export interface CorpusItem {
  source: string;
  /** What the generator meant to exercise (for reading disagreements). */
  kind: string;
  options: Record<string, string>;
  answer_idx: string;
  output: string;
}

const LETTERS = 'ABCDEFGHIJKLMN';

/** Characters around a letter, by class; each is a word or non-word character to Python. */
const NEIGHBOURS: Record<string, string[]> = {
  ascii_letter: ['a', 'z', 'Q', 'x'],
  ascii_digit: ['0', '7'],
  underscore: ['_'],
  space: [' ', '\t', '\n', '\r'],
  py_only_space: ['\x1c', '\x1f', '\x85'],
  js_only_space: ['\ufeff'],
  unicode_space: ['\u00a0', '\u3000', '\u2009'],
  punct: ['.', ',', ':', ';', '!', '?', ')', ']', '-', '/', '*', '(', '"', "'", '#', '，', '。', '：', '）', '（', '、'],
  cjk_in_range: ['是', '项', '为', '选', '答', '案', '\u4e00', '\u9fff'],
  cjk_out_of_range: ['\u3400', '\u3007', '\uf900', '\u{20000}', 'ア', 'あ', '한'],
  latin_letter: ['é', 'ß', 'Ñ', 'ı', 'İ', 'ǅ'],
  other_letter: ['Ж', 'λ', 'Σ', 'ש', 'ع', 'ก', '\u{1d400}', 'ª', 'ʰ'],
  unicode_digit: ['٣', '६', '\uff11', '\u{1d7ce}'],
  unicode_number: ['²', '½', '①', 'Ⅻ', '\u2160', '\u3007', '\u{10107}'],
  mark: ['\u0301', '\u0308', '\u093e', '\u20dd', '\u0903'],
  symbol: ['©', '→', '€', '😀', '\u{1f600}', '°', '±'],
  format: ['\u200b', '\u200d', '\u00ad'],
};
const CLASSES = Object.keys(NEIGHBOURS);

/** Phrases that come right before an answer letter in outputs. */
const LEADS = [
  'The answer is ', 'the answer is ', 'answer is', 'answer is\n', 'answer is  ', 'answer is\t\n ', 'Answer is ', 'answer: ',
  'The correct answer is ', 'The correct option is ', 'answer is\u3000', 'answer is\x85', 'answer is\ufeff', 'answer is\x1c',
  'answer is **', 'answer is (', 'answer is option ', 'answer isn\'t ', 'answers is ', 'ANSWER IS ', '答案是', '正确答案为', '选项', '故选',
  'is ', 'Is ', 'this is', 'Option ', '**', '(', '"', "'", '#', '# ', '## ', '> ', '- ', '1. ', '',
];

const TAILS = [
  '', '.', '. ', ')', ').', '**', '**.', '\n', '\n\n', ' ', ' is correct.', ' because', 'is', '-cell', "'s", '\u0301', '。', '项', '，因为',
  ' A', ': ', 'BC', 'b', '1', '_', '\ufeff', '\x85', '\u3000',
];

const FILLER = [
  'Let me think about this step by step.',
  'The patient presents with classic symptoms.',
  'A patient with this history usually responds to treatment.',
  'Considering each option in turn:',
  'This is consistent with the mechanism described.',
  'I think option',
  'None of the above fits perfectly, but',
  'A 45-year-old man. B-cell lymphoma. T-cell. Vitamin A deficiency. Hepatitis B.',
  '根据题意，',
  '患者的症状提示',
  'Σ ΟΔΟΣ σοφίας ΣΟΦΟΣ',
  'İstanbul KELVIN \u212a ß straße',
  'e\u0301 café naïve',
];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)];
}

function neighbour(rng: Rng): [string, string] {
  const cls = pick(rng, CLASSES);
  return [cls, pick(rng, NEIGHBOURS[cls])];
}

/** Mangles a text a little: a typo, a dropped word, swapped case, a truncation. */
function nearMiss(rng: Rng, text: string): string {
  switch (rng.int(6)) {
    case 0: {
      if (text.length < 2) return text + 'x';
      const i = rng.int(text.length);
      return text.slice(0, i) + pick(rng, ['e', 'a', ' ', '']) + text.slice(i + 1);
    }
    case 1: {
      const w = text.split(' ');
      if (w.length > 1) w.splice(rng.int(w.length), 1);
      return w.join(' ');
    }
    case 2:
      return text.toUpperCase();
    case 3:
      return text.slice(0, Math.max(1, Math.floor(text.length * (0.3 + 0.6 * rng.next()))));
    case 4:
      return text.split(' ').reverse().join(' ');
    default:
      return `${text.slice(0, 3)} ${text.slice(3)}`;
  }
}

/** Options for an item, resized to `count` (2–14): the item's own, then borrowed or near-miss ones. */
function resizeOptions(rng: Rng, own: Record<string, string>, pool: string[], count: number): Record<string, string> {
  const texts = Object.values(own);
  const out: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    let t = texts[i] ?? pick(rng, pool);
    const roll = rng.next();
    if (roll < 0.04) t = texts[0] ?? t; // the same text twice: ties
    else if (roll < 0.07) t = (texts[0] ?? t).slice(0, 4); // a prefix of another option
    else if (roll < 0.09) t = '';
    else if (roll < 0.12) t = pick(rng, ['Yes', 'No', 'Maybe', 'None', 'A', 'B and C', 'All of the above', 'ΣΟΦΟΣ', 'İlaç', 'straße']);
    out[LETTERS[i]] = t;
  }
  return out;
}

export interface CorpusOptions {
  size: number;
  seed?: number;
}

/** Builds the corpus from an evaluation file's sources (source name → MCQ items). */
export function buildCorpus(sources: Record<string, McqItem[]>, opts: CorpusOptions): CorpusItem[] {
  const rng = new Rng(`scorer-agreement:${opts.seed ?? 0}`);
  const all = Object.entries(sources).flatMap(([source, items]) => items.map((item) => ({ source, item })));
  if (all.length === 0) throw new Error('the evaluation file has no items');
  const pool = all.flatMap(({ item }) => Object.values(item.options));
  const out: CorpusItem[] = [];
  const generators: [string, (o: Record<string, string>, gold: string) => string][] = [
    ['answer-is', (o) => {
      const parts: string[] = [];
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) parts.push(pick(rng, FILLER), pick(rng, LEADS) + pick(rng, [...LETTERS, 'O', 'P', 'Z', 'a', 'b']) + pick(rng, TAILS));
      return parts.join(pick(rng, [' ', '\n', '']));
    }],
    ['lone-letter', (o) => {
      const keys = Object.keys(o);
      const parts: string[] = [];
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) {
        const [, before] = neighbour(rng);
        const [, after] = neighbour(rng);
        const letter = rng.next() < 0.8 ? pick(rng, keys) : pick(rng, [...LETTERS, 'a', 'b', 'O', 'Z']);
        const lead = rng.next() < 0.3 ? pick(rng, LEADS) : '';
        parts.push(rng.next() < 0.2 ? '' : before, lead, letter, rng.next() < 0.15 ? '' : after, rng.next() < 0.3 ? ' ' + pick(rng, FILLER) : '');
      }
      return parts.join('');
    }],
    ['letter-edges', () => {
      // A lone letter at the very start or end, or followed by a space (the "A " lookahead).
      const letter = pick(rng, ['A', 'B', 'C', 'a', 'A ', 'A  ', 'A\n', 'A\u00a0']);
      return pick(rng, [letter, `${letter}`, `${letter} patient`, `foo ${letter}`, `${letter}\n`, `(${letter})`, `${letter}${neighbour(rng)[1]}`, `${neighbour(rng)[1]}${letter}`]);
    }],
    ['option-text', (o) => {
      const texts = Object.values(o);
      const parts: string[] = [pick(rng, FILLER).toLowerCase()];
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) {
        let t = pick(rng, texts);
        t = pick(rng, [t, t.toLowerCase(), t.toUpperCase(), `**${t}**`, `"${t}"`, t + t]);
        parts.push(t);
      }
      // Keep the text free of capital letters most of the time, so rule 3 decides.
      const joined = parts.join(pick(rng, [' ', '; ', ' and ', ' rather than ', '\n']));
      return rng.next() < 0.7 ? joined.toLowerCase() : joined;
    }],
    ['similarity', (o) => {
      const texts = Object.values(o);
      const base = nearMiss(rng, pick(rng, texts) || 'x');
      const roll = rng.next();
      let text = base;
      if (roll < 0.3) {
        // Around difflib's autojunk threshold (200 code points of the output).
        const target = 190 + rng.int(21);
        while (text.length < target) text += ' ' + nearMiss(rng, pick(rng, texts) || 'y');
        text = text.slice(0, target);
      } else if (roll < 0.5) {
        while (text.length < 600 + rng.int(1500)) text += ' ' + nearMiss(rng, pick(rng, texts) || 'z').toLowerCase() + ' ' + pick(rng, FILLER).toLowerCase();
      } else if (roll < 0.6) {
        text = pick(rng, ['xyz', '...', 'qqq', '\u{1f600}\u{1f600}', 'ааа', '']);
      }
      return text.toLowerCase().replace(/\b[a-n]\b/g, 'q');
    }],
    ['final-response', (o, gold) => {
      const thinking = `## Thinking\n\n${pick(rng, FILLER)} Maybe ${pick(rng, Object.keys(o))}. The answer is ${pick(rng, Object.keys(o))}.`;
      const cut = pick(rng, ['## Final Response\n\n', '## Final Response\n', '## Final Response\n\n\n', '## Final Response \n\n', '## Final response\n\n', '## Final Response\n\n## Final Response\n\n']);
      const answer = pick(rng, [
        `The answer is ${gold}.`, `${gold}. ${o[gold] ?? ''}`, `${(o[gold] ?? '').toLowerCase()}`, `**${gold}**`, `answer is\n\n${gold}`,
        nearMiss(rng, (o[gold] ?? 'x').toLowerCase()), `正确答案是${gold}项`, '',
      ]);
      return `${thinking}\n\n${cut}${answer}${pick(rng, ['', '</s>', ' ', '\n'])}`;
    }],
    ['empty', () => pick(rng, ['', ' ', '  ', '</s>', ' </s>', '\n', '</s></s>'])],
    ['mixed', (o) => {
      const keys = Object.keys(o);
      const parts: string[] = [];
      const n = 2 + rng.int(6);
      for (let i = 0; i < n; i++) {
        switch (rng.int(5)) {
          case 0: parts.push(pick(rng, FILLER)); break;
          case 1: parts.push(neighbour(rng)[1] + pick(rng, keys) + neighbour(rng)[1]); break;
          case 2: parts.push(pick(rng, LEADS) + pick(rng, keys) + pick(rng, TAILS)); break;
          case 3: parts.push(pick(rng, Object.values(o))); break;
          default: parts.push(neighbour(rng)[1].repeat(1 + rng.int(3)));
        }
      }
      return parts.join(pick(rng, ['', ' ', '\n']));
    }],
  ];
  for (let i = 0; i < opts.size; i++) {
    const { source, item } = pick(rng, all);
    const ownCount = Object.keys(item.options).length;
    const roll = rng.next();
    const count = roll < 0.5 ? ownCount : roll < 0.9 ? 2 + rng.int(9) : 11 + rng.int(4);
    const options = count === ownCount && rng.next() < 0.7 ? { ...item.options } : resizeOptions(rng, item.options, pool, count);
    const keys = Object.keys(options);
    const gold = keys.includes(item.answer_idx) && rng.next() < 0.8 ? item.answer_idx : pick(rng, keys);
    const [kind, make] = generators[i % generators.length];
    out.push({ source, kind, options, answer_idx: rng.next() < 0.05 ? gold.toLowerCase() : gold, output: make(options, gold) });
  }
  return out;
}
