/**
 * Entry point of every built-in job process:
 *   node --import tsx jobs/main.ts SPEC.json
 * Loads the job module of the spec's kind, runs it, and reports `result` or `error`
 * on the protocol (contract/protocol.ts). Exit codes: 0 done, 2 user error (never
 * retried), 1 anything else.
 *
 * The module of kind K is jobs/K.ts (e.g. jobs/data.verify.ts). Folders listed in
 * DOCTOR_AGENT_JOBS_DIR (separated by ':') are searched after jobs/ (jobs/modules.ts); the
 * tests use it to add small job modules of their own (test/fixtures/jobs/).
 */
import { pathToFileURL } from 'node:url';
import { readJsonFile } from '../common/fs.ts';
import type { JobSpec } from '../contract/protocol.ts';
import { makeContext, send, type JobModule } from '../contract/job.ts';
import { UserError } from '../contract/errors.ts';
import { findJobModule, jobDirs, validKindName } from './modules.ts';

function findModule(kind: string): string {
  if (!validKindName(kind)) {
    throw new UserError(`invalid step kind ${JSON.stringify(kind)}`, { hint: 'kinds are names like "train.sft"' });
  }
  const dirs = jobDirs();
  const found = findJobModule(kind, dirs);
  if (found) return found;
  throw new UserError(`step kind "${kind}" has no built-in job (looked for ${kind}.ts in ${dirs.join(', ')})`, {
    hint: 'check the `uses:` of the step, or run the program as a `command` step',
  });
}

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (!specPath) throw new UserError('usage: jobs/main.ts SPEC.json');
  const spec = readJsonFile<JobSpec>(specPath);
  // A module that exists but fails to load is a bug, not bad input: let it crash (and be retried).
  const mod = (await import(pathToFileURL(findModule(spec.kind)).href)) as JobModule;
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
