/** The judge prompt shared by the LLM judge and the model verifier (data/verifiers.ts). */

/** What the judge prompt shows: a verifier's input (data/verifiers.ts VerifyInput) has these fields. */
export interface JudgeInput {
  response: string;
  reference: string;
  question?: string;
  /** Option letter → text, when the item is multiple choice. */
  options?: Record<string, string>;
}

export function judgePrompt({ response, reference, question, options }: JudgeInput): string {
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

/** What HuatuoGPT-o1's reward gives its verifier in place of the answer of a malformed response. */
export const NO_ANSWER = 'I do not know the answer.';

/**
 * The input of HuatuoGPT-o1's verifier model (FreedomIntelligence/medical_o1_verifier_3B, a
 * sequence classifier trained on exactly this text): the model's final response (NO_ANSWER when
 * the response is malformed: null), the reference answer, the instruction, and the verifier
 * tokenizer's end-of-sequence token as text. Whitespace, the spaces before " ." and the final
 * space before the token are part of the format.
 */
export function huatuoVerifierInput(response: string | null, reference: string, eosToken: string): string {
  return [
    '<Model Response>', response ?? NO_ANSWER, '</Model Response>', '',
    '<Reference Answer>', reference, '</Reference Answer>', '',
    'Your task is to evaluate the model response by comparing it to the reference answer. ' +
      'If the model response is correct and aligns with the reference answer, output "True" . ' +
      'If it is incorrect or fails to select the correct option (if options are provided), output "False" . ' + eosToken,
  ].join('\n');
}
