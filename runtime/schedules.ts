/**
 * Temporal Schedules that start a pipeline (e.g. the nightly evaluation). The Plan is
 * compiled when the schedule is created and stored in it; re-create the schedule to
 * pick up an edited YAML file. A run that is due while the previous one still runs is
 * skipped unless asked otherwise.
 */
import { Client, ScheduleOverlapPolicy, type ScheduleDescription, type ScheduleSummary } from '@temporalio/client';
import type { Plan } from '../dsl/plan.ts';
import { PIPELINE_KEY, STATUS_KEY } from '../workflows/definitions.ts';
import { WORKFLOW_QUEUE, WORKFLOW_TYPE, type RunOptions } from '../workflows/types.ts';
import { pipelineInput } from './runs.ts';
import { checkScheduleName } from './schedule-name.ts';
import { UserError } from '../contract/errors.ts';

export const OVERLAP = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;
export type OverlapName = keyof typeof OVERLAP;

export interface CreateScheduleOptions {
  name: string;
  plan: Plan;
  cron: string;
  timezone?: string;
  overlap?: OverlapName;
  options?: RunOptions;
  searchAttributes?: boolean;
  /** Free text kept with the schedule (e.g. the YAML file it came from). */
  note?: string;
}

export async function createSchedule(client: Client, o: CreateScheduleOptions): Promise<void> {
  checkScheduleName(o.name);
  const overlap = o.overlap ?? 'skip';
  if (!Object.hasOwn(OVERLAP, overlap)) throw new UserError(`overlap ${overlap}: use one of ${Object.keys(OVERLAP).join(', ')}`);
  await client.schedule.create({
    scheduleId: o.name,
    spec: { cronExpressions: [o.cron], timezone: o.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: WORKFLOW_TYPE,
      // Each run gets this id plus the time it was due appended by the server.
      workflowId: o.name,
      taskQueue: WORKFLOW_QUEUE,
      args: [pipelineInput(o.plan, o.options ?? {}, !!o.searchAttributes)],
      ...(o.searchAttributes
        ? { typedSearchAttributes: [{ key: PIPELINE_KEY, value: o.plan.name }, { key: STATUS_KEY, value: 'running' }] }
        : {}),
    },
    policies: { overlap: OVERLAP[overlap], catchupWindow: '1 minute' },
    state: { note: o.note },
    memo: { pipeline: o.plan.name, planHash: o.plan.hash, source: o.plan.sources[0] ?? '', cron: o.cron, timezone: o.timezone ?? 'UTC' },
  });
}

export async function listSchedules(client: Client): Promise<ScheduleSummary[]> {
  const out: ScheduleSummary[] = [];
  for await (const s of client.schedule.list()) out.push(s);
  return out;
}

/** The handle of a schedule; a name that breaks the rule of step ids is refused (runtime/schedule-name.ts). */
function handle(client: Client, name: string) {
  const id = checkScheduleName(name);
  return client.schedule.getHandle(id);
}

export async function describeSchedule(client: Client, name: string): Promise<ScheduleDescription> {
  return handle(client, name).describe();
}

/** Starts a run now, whatever the overlap policy says (it is an explicit request). */
export async function triggerSchedule(client: Client, name: string): Promise<void> {
  return handle(client, name).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
}

export async function pauseSchedule(client: Client, name: string, note?: string): Promise<void> {
  return handle(client, name).pause(note);
}

export async function unpauseSchedule(client: Client, name: string, note?: string): Promise<void> {
  return handle(client, name).unpause(note);
}

export async function deleteSchedule(client: Client, name: string): Promise<void> {
  return handle(client, name).delete();
}

/** Ids of the runs the schedule started, newest last. */
export async function scheduleRuns(client: Client, name: string): Promise<string[]> {
  const d = await describeSchedule(client, name);
  return d.info.recentActions.map((a) => a.action.workflow.workflowId);
}
