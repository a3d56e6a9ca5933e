/** train.sft: supervised fine-tuning on the "## Thinking / ## Final Response" target (train/sft-loop.ts). */
import { SftParams } from '../dsl/kinds/sft.ts';
import { runSft } from '../train/sft-loop.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  return runSft(ctx, parseParams(SftParams, ctx.params, 'train.sft'));
}
