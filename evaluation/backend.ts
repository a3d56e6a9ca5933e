/**
 * What the server needs from a model: a tokenizer and a decode batch that sequences
 * can join and leave between steps (continuous batching). The engine adapter
 * (evaluation/engine-backend.ts) and the scripted test backend both implement it.
 */

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables it. */
  topP: number;
  /** Keep only the k most likely tokens; 0 disables it. */
  topK: number;
  /** Keep only the tokens at least this fraction as likely as the most likely one (after the temperature); 0 or absent disables it. */
  minP?: number;
  /** Seed of this sequence's own random stream (the server derives one per choice: engine/generate.ts rowSeed). */
  seed: number;
}

export interface SequenceStart {
  /** Unique per running sequence, chosen by the scheduler. */
  id: number;
  promptIds: number[];
  sampling: SamplingParams;
}

export interface StepToken {
  id: number;
  token: number;
  /** Log-probability of the token under the model (temperature 1, before top-k / top-p). */
  logprob: number;
}

/** A set of sequences decoded together, one token each per step. */
export interface DecodeBatch {
  /** Admits sequences (prefill). They get their first token from the next `step()`. */
  add(seqs: SequenceStart[]): Promise<void>;
  /** Drops sequences (finished or cancelled); their state is freed. */
  remove(ids: number[]): void;
  /** Samples one token for every sequence in the batch. */
  step(): Promise<StepToken[]>;
  /** Frees whatever the batch still holds (called when the scheduler drops it). */
  dispose?(): void;
}

export interface ChatTurn {
  role: string;
  content: string;
}

export interface Backend {
  /** Model name reported by /v1/models. */
  name: string;
  /** Folder the model was loaded from (reported by /get_model_info). */
  path: string;
  /** Largest prompt + completion length in tokens. */
  contextLength: number;
  /** Token ids are in [0, vocabSize). */
  vocabSize: number;
  /** Ids that end a sequence. */
  eosTokenIds: number[];
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** The conversation rendered with the model's chat template, ready for generation. */
  encodeChat(messages: ChatTurn[]): number[];
  newBatch(): DecodeBatch;
  /**
   * Log-probabilities of each prompt token after the first under the model, with the `top`
   * most likely tokens at each of those positions (for echo with logprobs). Optional: a
   * backend without it refuses such requests.
   */
  promptLogprobs?(promptIds: number[], top: number): Promise<{ logprob: number; top: { token: number; logprob: number }[] }[]>;
  close?(): Promise<void> | void;
}

/**
 * Completions of token-id prompts, `n` choices each, numbered `index = prompt × n + choice` and
 * choice k sampled from the stream `rowSeed(seed, k)` (engine/generate.ts): the request
 * `/v1/completions` answers. RL rollouts ask it of the policy, in-process (the engine) or at an
 * OpenAI/SGLang-compatible server (evaluation/completions.ts).
 */
export interface TokenCompletionRequest {
  prompts: number[][];
  n: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  /** Tokens that end a choice (besides the server's own end-of-sequence tokens). */
  stopTokenIds: number[];
}

export interface TokenCompletion {
  /** The sampled tokens; the token that ended the choice is not among them (it is `matchedStop`). */
  tokens: number[];
  /** Log-probability of each token under the model (temperature 1). */
  logprobs: number[];
  /** `stop`: ended by a stop token; `length`: after `maxTokens` tokens. */
  finishReason: 'stop' | 'length';
  /** With `stop`: the token that ended it, when the server names it (SGLang's `matched_stop`, vLLM's `stop_reason`). */
  matchedStop?: number;
}

export interface TokenCompletions {
  /** Where the completions come from, for logs (e.g. "in-process engine", "MODEL at URL"). */
  where: string;
  /** The choices in index order: prompts.length × n of them. */
  complete(req: TokenCompletionRequest): Promise<TokenCompletion[]>;
}
