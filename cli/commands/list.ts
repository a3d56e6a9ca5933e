/** `doctor-agent list`: recent pipeline runs, newest first. */
import type { Command } from 'commander';

export function registerList(program: Command): void {
  program
    .command('list')
    .description('list pipeline runs, newest first')
    .option('-n, --limit <n>', 'at most this many', Number, 30)
    .option('--json', 'print as JSON')
    .action(async (o: { limit: number; json?: boolean }) => {
      const [{ withTemporal }, { listRuns }] = await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts')]);
      await withTemporal(async (t) => {
        const runs = await listRuns(t.client, o.limit);
        if (o.json) return void process.stdout.write(JSON.stringify(runs, null, 2) + '\n');
        if (runs.length === 0) return void console.log('no runs yet (`doctor-agent run FILE` starts one)');
        const w = Math.max(...runs.map((r) => r.id.length));
        for (const r of runs) {
          console.log(`${r.id.padEnd(w)}  ${r.status.padEnd(10)}  ${r.startTime.toISOString().slice(0, 19).replace('T', ' ')}  ${r.pipeline ?? ''}`);
        }
      });
    });
}
