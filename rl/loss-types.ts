/**
 * The names of GRPO's loss aggregations (TRL's loss_type), apart from their tensor code
 * (rl/losses.ts aggregateTokens) so that the step-kind schemas, which the command line loads
 * at start-up, can list them without loading TensorFlow.js.
 */
export const LOSS_TYPES = ['grpo', 'dr_grpo', 'dapo'] as const;
export type LossType = (typeof LOSS_TYPES)[number];
