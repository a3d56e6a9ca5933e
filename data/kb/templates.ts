/**
 * Phrasings of the knowledge-base items. Every vignette template and question stem has
 * an id; those marked `heldOut` are never used for training items, only for the
 * "unseen phrasings" evaluation set.
 */
export type QuestionType = 'diagnosis' | 'treatment' | 'mechanism' | 'test';
export const QUESTION_TYPES: readonly QuestionType[] = ['diagnosis', 'treatment', 'mechanism', 'test'];

/** What a vignette is made of, already chosen and phrased. */
export interface VignetteParts {
  /** "A 34-year-old woman", "An 8-month-old boy". */
  subject: string;
  /** "34-year-old woman" (no article). */
  who: string;
  pronoun: 'she' | 'he';
  /** A risk factor phrase, or undefined when none is mentioned. */
  risk?: string;
  findings: string[];
  labs: [string, string][];
}

export interface VignetteTemplate {
  id: string;
  heldOut: boolean;
  render(p: VignetteParts): string;
}

export interface QuestionTemplate {
  id: string;
  type: QuestionType;
  heldOut: boolean;
  /** Stem of the multiple-choice question. */
  mcq: string;
  /** Stem of the open-ended (verifiable) question. */
  open: string;
}

/** "a, b and c". */
export function listText(items: readonly string[], conj = 'and'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conj} ${items[items.length - 1]}`;
}

export function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

const colonLabs = (labs: [string, string][]) => labs.map(([t, r]) => `${t}: ${r}`).join('; ');
const lineLabs = (labs: [string, string][]) => labs.map(([t, r]) => `${capitalize(t)}: ${r}`).join('\n');
const parenLabs = (labs: [string, string][]) => listText(labs.map(([t, r]) => `${t} (${r})`));

export const VIGNETTE_TEMPLATES: readonly VignetteTemplate[] = [
  {
    id: 'v1', heldOut: false,
    render: (p) => `${p.subject}${p.risk ? ` with ${p.risk}` : ''} presents with ${listText(p.findings)}.` +
      (p.labs.length ? ` Investigations show ${colonLabs(p.labs)}.` : ''),
  },
  {
    id: 'v2', heldOut: false,
    render: (p) => `${p.subject} comes to the clinic because of ${listText(p.findings)}.` +
      (p.risk ? ` ${capitalize(p.pronoun === 'she' ? 'her' : 'his')} history is notable for ${p.risk}.` : '') +
      (p.labs.length ? ` Workup reveals ${parenLabs(p.labs)}.` : ''),
  },
  {
    id: 'v3', heldOut: false,
    render: (p) => `${p.subject} is seen in the emergency department with ${listText(p.findings)}.` +
      (p.risk ? ` Relevant background: ${p.risk}.` : '') +
      (p.labs.length ? `\n\n${lineLabs(p.labs)}\n` : ''),
  },
  {
    id: 'v4', heldOut: false,
    render: (p) => `You are asked to see ${lowerFirst(p.subject)} who reports ${listText(p.findings)}.` +
      (p.risk ? ` Risk factors include ${p.risk}.` : '') +
      (p.labs.length ? ` Results so far: ${colonLabs(p.labs)}.` : ''),
  },
  {
    id: 'v5', heldOut: false,
    render: (p) => `${p.subject} has had ${listText(p.findings)}.` +
      (p.risk ? ` Past history: ${p.risk}.` : '') +
      (p.labs.length ? ` Testing shows ${parenLabs(p.labs)}.` : ''),
  },
  {
    id: 'v6', heldOut: true,
    render: (p) => `Over recent days ${lowerFirst(p.subject)}${p.risk ? `, known for ${p.risk},` : ''} has developed ${listText(p.findings)}.` +
      (p.labs.length ? ` The available results are as follows — ${colonLabs(p.labs)}.` : ''),
  },
  {
    id: 'v7', heldOut: true,
    render: (p) => `Case summary. Patient: ${p.who}.` + (p.risk ? ` Background: ${p.risk}.` : '') +
      ` Findings: ${p.findings.join('; ')}.` + (p.labs.length ? ` Investigations: ${p.labs.map(([t, r]) => `${t} = ${r}`).join('; ')}.` : ''),
  },
];

export const QUESTION_TEMPLATES: readonly QuestionTemplate[] = [
  { id: 'd1', type: 'diagnosis', heldOut: false, mcq: 'Which of the following is the most likely diagnosis?', open: 'What is the most likely diagnosis?' },
  { id: 'd2', type: 'diagnosis', heldOut: false, mcq: "Which of the following best explains this patient's presentation?", open: "What condition best explains this patient's presentation?" },
  { id: 'd3', type: 'diagnosis', heldOut: false, mcq: 'Which of the following conditions is this patient most likely to have?', open: 'Which condition is this patient most likely to have?' },
  { id: 'd4', type: 'diagnosis', heldOut: true, mcq: 'Which single diagnosis accounts for this whole picture?', open: 'Name the single diagnosis that accounts for this whole picture.' },
  { id: 't1', type: 'treatment', heldOut: false, mcq: 'Which of the following is the most appropriate first-line treatment?', open: 'What is the most appropriate first-line treatment?' },
  { id: 't2', type: 'treatment', heldOut: false, mcq: 'Which of the following is the best initial management of the underlying condition?', open: 'What is the best initial management of the underlying condition?' },
  { id: 't3', type: 'treatment', heldOut: false, mcq: 'Which of the following should be offered first to treat this condition?', open: 'What should be offered first to treat this condition?' },
  { id: 't4', type: 'treatment', heldOut: true, mcq: "Which therapy is the standard first choice for this patient's disorder?", open: "What therapy is the standard first choice for this patient's disorder?" },
  { id: 'm1', type: 'mechanism', heldOut: false, mcq: 'Which of the following best describes the mechanism underlying this condition?', open: 'What mechanism underlies this condition?' },
  { id: 'm2', type: 'mechanism', heldOut: false, mcq: "Which of the following is the key process behind this patient's disease?", open: "What is the key process behind this patient's disease?" },
  { id: 'm3', type: 'mechanism', heldOut: false, mcq: 'Which of the following is responsible for this presentation?', open: 'What process is responsible for this presentation?' },
  { id: 'm4', type: 'mechanism', heldOut: true, mcq: 'The disorder in this patient results from which of the following?', open: 'The disorder in this patient results from what process?' },
  { id: 'n1', type: 'test', heldOut: false, mcq: 'Which of the following is the most appropriate next step to confirm the diagnosis?', open: 'What is the most appropriate next test to confirm the diagnosis?' },
  { id: 'n2', type: 'test', heldOut: false, mcq: 'Which of the following investigations would best establish the diagnosis?', open: 'Which investigation would best establish the diagnosis?' },
  { id: 'n3', type: 'test', heldOut: false, mcq: 'Which of the following tests is most useful to order next?', open: 'What test is most useful to order next?' },
  { id: 'n4', type: 'test', heldOut: true, mcq: 'Which study would most reliably confirm the suspected disorder?', open: 'Which study would most reliably confirm the suspected disorder?' },
];

export function vignetteTemplates(heldOut: boolean): VignetteTemplate[] {
  return VIGNETTE_TEMPLATES.filter((t) => t.heldOut === heldOut);
}

export function questionTemplates(type: QuestionType, heldOut: boolean): QuestionTemplate[] {
  return QUESTION_TEMPLATES.filter((t) => t.type === type && t.heldOut === heldOut);
}
