/** An error the user caused: main.ts prints its message alone, without a stack trace, and exits 1. */
import { UserError } from '../contract/errors.ts';

export function userError(message: string): Error {
  return new UserError(message);
}
