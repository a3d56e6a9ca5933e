/** `doctor-agent schedule create|list|describe|trigger|pause|unpause|delete`: pipelines on Temporal Schedules. */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { OverlapName } from '../../runtime/schedules.ts';
import { checkScheduleName, SCHEDULE_NAME_RULE } from '../../runtime/schedule-name.ts';
import { compileWith, withPipelineOptions, type PipelineOptions } from './compile.ts';
import { userError } from '../user-error.ts';
import { safeName } from '../../runtime/store.ts';

/**
 * The --overlap policies, in the order of OVERLAP in runtime/schedules.ts (test/cli/startup.test.ts
 * checks): listed here so that showing the help does not load the Temporal client.
 */
const OVERLAP_NAMES = ['skip', 'buffer-one', 'buffer-all', 'cancel-other', 'terminate-other', 'allow-all'];

/** The schedule functions and the connection, loaded when a subcommand runs. */
async function load() {
  const [schedules, { withTemporal }] = await Promise.all([import('../../runtime/schedules.ts'), import('../temporal.ts')]);
  return { ...schedules, withTemporal };
}

export function registerSchedule(program: Command): void {
  const schedule = program.command('schedule').description('run a pipeline on a schedule (e.g. nightly evaluation)');

  withPipelineOptions(
    schedule
      .command('create')
      .description('create a schedule; the pipeline is compiled now and stored in the schedule')
      .argument('<name>', `schedule id; its runs are named <name>-<time>; a name must ${SCHEDULE_NAME_RULE}`)
      .requiredOption('--pipeline <file>', 'pipeline YAML file')
      .requiredOption('--cron <expr>', 'cron expression, e.g. "0 2 * * *" for 02:00 every day')
      .option('--timezone <tz>', 'IANA time zone of the cron expression (default UTC)')
      .option('--overlap <policy>', `when a run is due while the last one runs: ${OVERLAP_NAMES.join(', ')}`, 'skip')
      .option('--no-cache', 'scheduled runs ignore the step cache'),
  ).action(async (name: string, o: PipelineOptions & { pipeline: string; cron: string; timezone?: string; overlap: string; cache: boolean }) => {
    checkScheduleName(name);
    const { OVERLAP, createSchedule, describeSchedule, withTemporal } = await load();
    // Its runs are named <name>-<time>, and run ids name folders in the artifact store.
    safeName('schedule name', name);
    if (!Object.hasOwn(OVERLAP, o.overlap)) throw userError(`--overlap ${o.overlap}: use one of ${Object.keys(OVERLAP).join(', ')}`);
    const plan = compileWith(o.pipeline, o);
    await withTemporal(async (t) => {
      try {
        await createSchedule(t.client, {
          name, plan, cron: o.cron, timezone: o.timezone, overlap: o.overlap as OverlapName,
          options: { noCache: !o.cache }, searchAttributes: t.searchAttributes, note: `from ${o.pipeline}`,
        });
      } catch (err) {
        const msg = (err as Error).message;
        if ((err as Error).name === 'ScheduleAlreadyRunning') throw userError(`schedule "${name}" exists; delete it first to replace it`);
        if (/cron|invalid/i.test(msg)) throw userError(`--cron "${o.cron}": ${msg}`);
        throw err;
      }
      const d = await describeSchedule(t.client, name);
      console.log(`schedule ${name}: ${plan.name} at "${o.cron}"${o.timezone ? ` (${o.timezone})` : ''}, overlap ${o.overlap}`);
      const next = d.info.nextActionTimes[0];
      if (next) console.log(`next run: ${next.toISOString()}`);
      console.log('scheduled runs need a worker: keep `doctor-agent worker` running');
    });
  });

  schedule
    .command('list')
    .description('list schedules')
    .action(async () => {
      const { listSchedules, withTemporal } = await load();
      await withTemporal(async (t) => {
        const all = await listSchedules(t.client);
        if (all.length === 0) return void console.log('no schedules');
        for (const s of all) {
          const cron = s.memo?.cron ? `"${String(s.memo.cron)}" ${String(s.memo.timezone ?? '')}` : '';
          const next = s.info?.nextActionTimes?.[0]?.toISOString() ?? '-';
          console.log(`${s.scheduleId}  ${s.state.paused ? 'paused' : 'active'}  ${String(s.memo?.pipeline ?? '')}  ${cron}  next ${next}`);
        }
      });
    });

  schedule
    .command('describe')
    .description('show a schedule: spec, state, recent and next runs')
    .argument('<name>')
    .option('--json', 'print as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      checkScheduleName(name);
      const { describeSchedule, withTemporal } = await load();
      await withTemporal(async (t) => {
        const d = await describeSchedule(t.client, name);
        if (o.json) return void process.stdout.write(JSON.stringify(d, null, 2) + '\n');
        console.log(`schedule ${name} (${d.state.paused ? 'paused' : 'active'}${d.state.note ? `, ${d.state.note}` : ''})`);
        console.log(`pipeline: ${String(d.memo?.pipeline ?? '?')} (plan ${String(d.memo?.planHash ?? '').slice(0, 12)})`);
        console.log(`cron: "${String(d.memo?.cron ?? '?')}" in ${d.spec.timezone || 'UTC'}`);
        console.log(`overlap: ${String(d.policies.overlap ?? "skip").toLowerCase()}`);
        console.log(`next: ${d.info.nextActionTimes.slice(0, 3).map((x) => x.toISOString()).join(', ') || '-'}`);
        for (const a of d.info.recentActions) console.log(`ran: ${a.takenAt.toISOString()}  ${a.action.workflow.workflowId}`);
      });
    });

  type Loaded = Awaited<ReturnType<typeof load>>;
  const simple = (cmd: string, what: string, fn: (s: Loaded, client: Client, name: string) => Promise<void>, done: string) =>
    schedule
      .command(cmd)
      .description(what)
      .argument('<name>')
      .action(async (name: string) => {
        checkScheduleName(name);
        const s = await load();
        await s.withTemporal(async (t) => {
          await fn(s, t.client, name);
          console.log(`${done} ${name}`);
        });
      });
  simple('trigger', 'start a run of the schedule now', (s, c, n) => s.triggerSchedule(c, n), 'triggered');
  simple('pause', 'stop starting runs (until unpause)', (s, c, n) => s.pauseSchedule(c, n), 'paused');
  simple('unpause', 'start runs again on the schedule', (s, c, n) => s.unpauseSchedule(c, n), 'unpaused');
  simple('delete', 'delete the schedule (its past runs stay)', (s, c, n) => s.deleteSchedule(c, n), 'deleted');
}
