/**
 * Entry point of every built-in job process:
 *   node --import tsx jobs/main.ts SPEC.json
 * Loads jobs/<kind>.ts, runs it, and reports `result` or `error` on the protocol.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { JobSpec } from '../runtime/protocol.ts';
import { makeContext, send, UserError, type JobModule } from './context.ts';

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (!specPath) throw new UserError('usage: jobs/main.ts SPEC.json');
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as JobSpec;
  const here = dirname(fileURLToPath(import.meta.url));
  const modPath = join(here, `${spec.kind}.ts`);
  let mod: JobModule;
  try {
    mod = (await import(pathToFileURL(modPath).href)) as JobModule;
  } catch (err) {
    throw new UserError(`step kind "${spec.kind}" has no built-in job (${(err as Error).message})`);
  }
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort());
  process.on('SIGINT', () => controller.abort());
  const outputs = await mod.run(makeContext(spec, controller.signal));
  send({ type: 'result', outputs });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const e = err as Error;
    if (e instanceof UserError) {
      send({ type: 'error', message: e.message, user: true, where: e.where, hint: e.hint });
      process.exit(2);
    }
    send({ type: 'error', message: e?.stack ?? String(err) });
    process.exit(1);
  },
);
