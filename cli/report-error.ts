/**
 * How a command line reports a failure: a user error as one message without a stack
 * trace (exit 1), anything else with its stack. Shared by doctor-agent and the temporal
 * CLI extensions.
 */
import { CompileError } from '../dsl/diagnostics.ts';
import { UserError } from '../contract/errors.ts';

/** What a file-system error code means, for the paths a user gives. */
const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'a folder, where a file was expected',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  EROFS: 'on a read-only file system',
  ENOSPC: 'no space left on the device',
  ENAMETOOLONG: 'the name is too long',
};

/** A file-system error on a path (a folder given with --out that cannot be made, a file that cannot be read...), in words. */
export function fsErrorMessage(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || !(e.code in FS_REASONS) || typeof e.path !== 'string') return undefined;
  return `${e.path}: ${FS_REASONS[e.code]} (${e.syscall ?? 'file access'} failed with ${e.code}): check the path and its permissions`;
}

/**
 * Prints a user error (no stack trace, then its hint when it has one) and sets exit code 1;
 * anything else is a bug and shows its stack. A user error is a UserError or a subclass
 * (e.g. DataError, whatever its name), any error named 'UserError' or marked `user`, or a
 * file-system error on a path (ENOENT, ENOTDIR, EACCES...).
 */
export function reportError(err: unknown): void {
  const fsMessage = fsErrorMessage(err);
  if (err instanceof CompileError) {
    process.stderr.write(err.format() + '\n');
  } else if (err instanceof UserError || (err instanceof Error && (err.name === 'UserError' || (err as { user?: boolean }).user))) {
    const hint = err instanceof UserError && err.hint ? `\n  ${err.hint}` : '';
    process.stderr.write(`error: ${err.message}${hint}\n`);
  } else if (fsMessage) {
    process.stderr.write(`error: ${fsMessage}\n`);
  } else {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exitCode = 1;
}
