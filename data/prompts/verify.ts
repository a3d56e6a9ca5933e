/** The judge prompt shared by the LLM judge and the model verifier (data/verifiers.ts). */
import type { VerifyInput } from '../verifiers.ts';

export function judgePrompt({ response, reference, question, options }: VerifyInput): string {
  const parts = [
    'You check answers to medical questions. Decide whether the response below reaches the same answer as the reference answer.',
    'Judge the meaning, not the wording: synonyms, abbreviations and extra explanation are fine; a different or hedged answer is not.',
  ];
  if (question) parts.push(`<question>\n${question}\n</question>`);
  if (options) parts.push(`<options>\n${Object.entries(options).map(([k, v]) => `${k}. ${v}`).join('\n')}\n</options>`);
  parts.push(`<response>\n${response}\n</response>`, `<reference>\n${reference}\n</reference>`);
  parts.push('Reply with one word: True if the response matches the reference answer, False if it does not.');
  return parts.join('\n\n');
}
