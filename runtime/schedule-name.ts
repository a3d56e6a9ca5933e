/**
 * Schedule names follow the rule of step ids (dsl/schema.ts ID_PATTERN): they become workflow
 * ids (`<name>-<time>`), folder names in the artifact store and words on command lines.
 * Light module (no Temporal import): the CLI checks a name before it connects.
 */
import { ID_PATTERN } from '../dsl/schema.ts';
import { UserError } from '../contract/errors.ts';

export const SCHEDULE_NAME_RULE = 'start with a letter or _ and hold only letters, digits, _ and - (the rule for step ids)';

/** Why a schedule name is refused, or undefined when it is fine. */
export function scheduleNameProblem(name: string): string | undefined {
  if (ID_PATTERN.test(name)) return undefined;
  return `schedule name ${JSON.stringify(name)} is not allowed: a name must ${SCHEDULE_NAME_RULE}, e.g. nightly-eval`;
}

/** Throws a UserError when the name breaks the rule. */
export function checkScheduleName(name: string): string {
  const problem = scheduleNameProblem(name);
  if (problem) throw new UserError(problem, { where: 'schedule name', hint: 'choose a name such as nightly or nightly_eval-2' });
  return name;
}
