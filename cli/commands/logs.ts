/** `doctor-agent logs RUN [--step S] [--follow]`: the job logs kept in the artifact store. */
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { Plan } from '../../dsl/plan.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { userError } from '../user-error.ts';
import { connectionFlags } from '../connection-flags.ts';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Reads what was appended to `file` since `offset`; returns the new offset. */
function readFrom(file: string, offset: number, write: (text: string) => void): number {
  if (!existsSync(file)) return offset;
  const size = statSync(file).size;
  if (size <= offset) return size < offset ? 0 : offset;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    write(buf.toString('utf8'));
  } finally {
    closeSync(fd);
  }
  return size;
}

function prefixed(prefix: string, carry: { rest: string }) {
  return (text: string) => {
    const all = carry.rest + text;
    const lines = all.split('\n');
    carry.rest = lines.pop() ?? '';
    for (const l of lines) process.stdout.write(`${prefix}${l}\n`);
  };
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a run's job logs (every attempt) from the artifact store")
    .argument('<run>', 'run id')
    .option('--step <id>', 'only this step')
    .option('-f, --follow', 'keep printing new lines until the run is over')
    .action(async (id: string, o: { step?: string; follow?: boolean }) => {
      const store = new ArtifactStore();
      if (!existsSync(store.runDir(id))) {
        throw userError(`no run "${id}" in the artifact store ${store.root} (set DOCTOR_AGENT_HOME if it lives elsewhere)`);
      }
      let plan: Plan | undefined;
      try {
        plan = store.readRunManifest<Plan>(id);
      } catch {
        /* a run whose first activity did not run yet */
      }
      const ids = plan?.steps.map((s) => s.id) ?? [];
      if (o.step && plan && !ids.includes(o.step)) throw userError(`run ${id} has no step "${o.step}" (steps: ${ids.join(', ')})`);
      const steps = o.step ? [o.step] : ids;
      const w = Math.max(0, ...steps.map((s) => s.length));
      const files = steps.map((s) => ({
        file: join(store.stepPath(id, s), 'step.log'),
        offset: 0,
        write: prefixed(o.step ? '' : `${s.padEnd(w)} | `, { rest: '' }),
      }));
      const pass = () => {
        for (const f of files) f.offset = readFrom(f.file, f.offset, f.write);
      };
      pass();
      if (!o.follow) return;
      const { connectTemporal } = await import('../../runtime/client.ts');
      const t = await connectTemporal({ store, flags: connectionFlags });
      try {
        for (;;) {
          await sleep(500);
          pass();
          const d = await t.client.workflow.getHandle(id).describe().catch(() => undefined);
          if (d && d.status.name !== 'RUNNING') {
            pass();
            break;
          }
        }
      } finally {
        await t.close();
      }
    });
}
