/** An error the user caused: main.ts prints its message alone, without a stack trace, and exits 1. */
export function userError(message: string): Error {
  const e = new Error(message);
  e.name = 'UserError';
  return e;
}
