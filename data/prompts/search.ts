/**
 * Prompts of data.search_reasoning (data/search.ts): the first chain of thought, its
 * extension by a search strategy, the hinted chain, and the rewrite into a natural
 * monologue (`Complex_CoT`) and a final answer (`Response`).
 */

export const STRATEGIES = ['Backtracking', 'Exploring New Paths', 'Verification', 'Correction'] as const;
export type Strategy = (typeof STRATEGIES)[number];

const STRATEGY_TEXT: Record<Strategy, string> = {
  Backtracking: 'go back to the earlier step where the reasoning first went wrong, and take a different route from there',
  'Exploring New Paths': 'set the current line of thought aside and approach the question from an angle not tried yet',
  Verification: 'check the reasoning so far step by step against the facts in the question, and find what does not hold',
  Correction: 'name the specific mistake in the reasoning and fix it, then follow the fixed reasoning through',
};

/** One step of a chain of thought, as the teacher writes it. */
export interface CotStep {
  action: string;
  title?: string;
  content: string;
}

const STEP_FORMAT = [
  'Reply with JSON only, in this shape:',
  '{"CoT": [',
  '  {"action": "Inner Thinking", "title": "<a few words>", "content": "<one reasoning step>"},',
  '  ... as many Inner Thinking steps as the question needs ...,',
  '  {"action": "Final Conclusion", "content": "<the answer, stated plainly>"},',
  '  {"action": "Verification", "content": "<a check of the conclusion against the question>"}',
  ']}',
].join('\n');

export function initialPrompt(question: string): string {
  return [
    'Work through the medical question below as a chain of reasoning steps, then state a final conclusion and check it.',
    `<question>\n${question}\n</question>`,
    STEP_FORMAT,
  ].join('\n\n');
}

export function strategyPrompt(question: string, chain: CotStep[], strategy: Strategy): string {
  return [
    'Here is a medical question and a chain of reasoning about it.',
    `<question>\n${question}\n</question>`,
    `<reasoning so far>\n${JSON.stringify(chain, null, 1)}\n</reasoning so far>`,
    `The final conclusion above is wrong. Continue the reasoning with the strategy "${strategy}": ${STRATEGY_TEXT[strategy]}.`,
    `Write only the new steps. Start with a step whose action is "${strategy}", then Inner Thinking steps as needed, then a new Final Conclusion and its Verification.`,
    STEP_FORMAT.replace('{"CoT": [', `{"CoT": [\n  {"action": "${strategy}", "title": "<a few words>", "content": "<what this strategy finds>"},`),
  ].join('\n\n');
}

export function hintPrompt(question: string, chain: CotStep[], answer: string): string {
  return [
    'Here is a medical question and a chain of reasoning about it that has not reached the right answer.',
    `<question>\n${question}\n</question>`,
    `<reasoning so far>\n${JSON.stringify(chain, null, 1)}\n</reasoning so far>`,
    `For your eyes only: the correct answer is "${answer}". Continue the reasoning so that it arrives at this answer through the evidence in the question. Never say or imply that the answer was given to you.`,
    `Write only the new steps, starting with a step whose action is "Correction".`,
    STEP_FORMAT,
  ].join('\n\n');
}

export function naturalPrompt(question: string, chain: CotStep[]): string {
  return [
    'Below is a medical question and a chain of reasoning steps that solved it, including wrong turns and how they were fixed.',
    `<question>\n${question}\n</question>`,
    `<reasoning steps>\n${JSON.stringify(chain, null, 1)}\n</reasoning steps>`,
    [
      'Rewrite the steps as one natural inner monologue: someone thinking aloud in the first person, in plain paragraphs.',
      'Keep the doubts, the checks and the changes of mind ("hmm, that does not fit...", "wait, let me look again"), and end at the final conclusion.',
      'No headings, no lists, no mention of steps, strategies or actions.',
    ].join(' '),
    'Reply with JSON only: {"NaturalReasoning": "<the monologue>"}',
  ].join('\n\n');
}

export function responsePrompt(question: string, thinking: string): string {
  return [
    'A clinician has thought through the medical question below. Write the answer they give to the person who asked.',
    `<question>\n${question}\n</question>`,
    `<thinking>\n${thinking}\n</thinking>`,
    'Give the conclusion first, then the key reasons in a few sentences, consistent with the thinking. Reply with the answer text only.',
  ].join('\n\n');
}
