/**
 * Entry point of every built-in job process:
 *   node --import tsx jobs/main.ts SPEC.json
 * Loads the job module the spec names (`module`: the kind's declared `builtin` runner,
 * resolved by the supervisor, runtime/runners.ts), runs it, and reports `result` or `error`
 * on the protocol (contract/protocol.ts). Exit codes: 0 done, 2 user error (never retried),
 * 1 anything else.
 */
import { pathToFileURL } from 'node:url';
import { readJsonFile } from '../common/fs.ts';
import type { JobSpec } from '../contract/protocol.ts';
import { UserError } from '../contract/errors.ts';
import { makeContext, send, type JobModule } from '../contract/job.ts';

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (!specPath) throw new UserError('usage: jobs/main.ts SPEC.json');
  const spec = readJsonFile<JobSpec>(specPath);
  if (!spec.module) throw new UserError(`the job spec ${specPath} names no job module`, { hint: 'the supervisor writes it from the runner the step kind declares' });
  // A module that exists but fails to load is a bug, not bad input: let it crash (and be retried).
  const mod = (await import(pathToFileURL(spec.module).href)) as JobModule;
  if (typeof mod.run !== 'function') throw new Error(`job module of "${spec.kind}" does not export run(ctx)`);
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  process.on('SIGINT', () => controller.abort());
  const outputs = await mod.run(makeContext(spec, controller.signal));
  send({ type: 'result', outputs: outputs ?? {} });
}

/** Exit only once stdout is flushed, so the last message is never lost. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

main().then(
  () => exit(0),
  (err: unknown) => {
    const e = err as Error;
    if (e instanceof UserError) {
      send({ type: 'error', message: e.message, user: true, where: e.where, hint: e.hint });
      exit(2);
      return;
    }
    send({ type: 'error', message: e?.stack ?? String(err) });
    exit(1);
  },
);
