/** A job's parameters checked against its kind's schema. */
import type { z } from 'zod';
import { UserError } from './errors.ts';

/**
 * The step's `with:` parameters checked by its kind's schema (defaults filled in). Bad ones are
 * one user error naming every problem by its field (`with.epochs: ...; with.data: ...`), `where`
 * the first field, with the kind's documentation as hint.
 */
export function parseParams<T>(schema: z.ZodType<T>, params: unknown, kind: string): T {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((i) => ['with', ...i.path.map(String)].join('.'));
  const message = parsed.error.issues.map((i, k) => `${fields[k]}: ${i.message}`).join('; ');
  throw new UserError(message, { where: fields[0], hint: `see docs/pipeline-language.md, ${kind}` });
}
