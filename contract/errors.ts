/** A failure caused by the user's input or config: never retried, shown as is (no stack trace). */
export class UserError extends Error {
  readonly where?: string;
  readonly hint?: string;
  constructor(message: string, opts: { where?: string; hint?: string } = {}) {
    super(message);
    this.name = 'UserError';
    this.where = opts.where;
    this.hint = opts.hint;
  }
}
