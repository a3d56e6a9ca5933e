/** train.sft: supervised fine-tuning on the "## Thinking / ## Final Response" target (train/sft-loop.ts). */
import { SftParams } from '../dsl/kinds/sft.ts';
import { runSft } from '../train/sft-loop.ts';
import { UserError, type JobContext } from './context.ts';

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const parsed = SftParams.safeParse(ctx.params);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UserError(`with.${i.path.join('.') || '(params)'}: ${i.message}`, { hint: 'see docs/pipeline-language.md, train.sft' });
  }
  return runSft(ctx, parsed.data);
}
