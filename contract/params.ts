/** A job's parameters checked against its kind's schema. */
import type { z } from 'zod';
import { UserError } from './errors.ts';

/** The step's `with:` parameters checked by its kind's schema; the first problem is a user error naming the field. */
export function parseParams<T>(schema: z.ZodType<T>, params: unknown, kind: string): T {
  const parsed = schema.safeParse(params);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UserError(`with.${i.path.join('.') || '(params)'}: ${i.message}`, { hint: `see docs/pipeline-language.md, ${kind}` });
  }
  return parsed.data;
}
