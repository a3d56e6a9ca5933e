/**
 * Runs seen from a client: start a Plan, read its live progress (the workflow's
 * `progress` query merged with the heartbeats the server holds for running steps),
 * list, pause, resume, cancel. The CLI commands are thin wrappers over these.
 */
import { randomBytes } from 'node:crypto';
import { Client, WorkflowHandle, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Plan } from '../dsl/plan.ts';
import { UserError } from '../contract/errors.ts';
import { PIPELINE_KEY, STATUS_KEY, pauseSignal, progressQuery, resumeSignal } from '../workflows/definitions.ts';
import type { pipeline } from '../workflows/pipeline.ts';
import {
  WORKFLOW_QUEUE, WORKFLOW_TYPE, type PipelineInput, type PipelineProgress, type PipelineResult, type RunOptions,
  type StepHeartbeat,
} from '../workflows/types.ts';

/** A readable, unique run id: <pipeline>-<yyyymmdd>-<hhmmss>-<4 hex>. */
export function newRunId(pipelineName: string, now = new Date()): string {
  const slug = pipelineName.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';
  const iso = now.toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
  return `${slug}-${stamp}-${randomBytes(2).toString('hex')}`;
}

export function pipelineInput(plan: Plan, options: RunOptions, searchAttributes: boolean): PipelineInput {
  return { plan, options, searchAttributes };
}

export interface StartRunOptions extends RunOptions {
  runId?: string;
  /** Whether the server has our search attributes (from connectTemporal). */
  searchAttributes?: boolean;
}

export async function startRun(client: Client, plan: Plan, o: StartRunOptions = {}) {
  const { runId, searchAttributes = false, ...options } = o;
  return client.workflow.start<typeof pipeline>(WORKFLOW_TYPE, {
    workflowId: runId ?? newRunId(plan.name),
    taskQueue: WORKFLOW_QUEUE,
    args: [pipelineInput(plan, options, searchAttributes)],
    ...(searchAttributes
      ? { typedSearchAttributes: [{ key: PIPELINE_KEY, value: plan.name }, { key: STATUS_KEY, value: 'running' }] }
      : {}),
  });
}

export type TemporalStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TERMINATED' | 'CONTINUED_AS_NEW' | 'TIMED_OUT' | 'UNKNOWN' | 'PAUSED' | 'UNSPECIFIED';

export interface RunView {
  id: string;
  /** Temporal's view of the execution. */
  execution: TemporalStatus;
  pipeline?: string;
  startTime: Date;
  closeTime?: Date;
  /** From the workflow's `progress` query, when a worker could answer it. */
  progress?: PipelineProgress;
  result?: PipelineResult;
  failure?: string;
  /** Steps that wait on the server's clock (a silent worker, a retry's backoff, no worker), from describe. */
  waits?: StepWait[];
}

/** The run's state: describe, then the progress query (if a worker answers within queryMs), plus live heartbeats. */
export async function runView(client: Client, id: string, queryMs = 5000): Promise<RunView> {
  const handle = client.workflow.getHandle<typeof pipeline>(id);
  const desc = await handle.describe();
  const view: RunView = {
    id, execution: desc.status.name as TemporalStatus, startTime: desc.startTime, closeTime: desc.closeTime,
    pipeline: desc.typedSearchAttributes.get(PIPELINE_KEY),
  };
  try {
    view.progress = await client.withDeadline(Date.now() + queryMs, () => handle.query(progressQuery));
    view.pipeline ??= view.progress.pipeline;
    mergeHeartbeats(view.progress, desc);
  } catch {
    /* no worker to answer: describe's view is all we have */
  }
  const pending = desc.raw.pendingActivities ?? [];
  if (pending.length > 0) {
    // The heartbeat timeout is in the activity's options on servers that report them; else in the Plan.
    let plan: Plan | undefined;
    const planStep = async (id: string) => {
      plan ??= await runInput(client, id).then((i) => i.plan, () => undefined);
      return plan?.steps.find((s) => s.id === id);
    };
    const now = new Date();
    const waits: StepWait[] = [];
    for (const a of pending) {
      let heartbeatMs = durationMs(a.activityOptions?.heartbeatTimeout);
      let queue = a.activityOptions?.taskQueue?.name ?? undefined;
      if (heartbeatMs === undefined || !queue) {
        const ps = await planStep(a.activityId ?? '');
        heartbeatMs ??= ps?.timeouts.heartbeatMs;
        queue ||= ps?.queue;
      }
      const w = stepWait(pendingInfo(a), now, { heartbeatMs, queue });
      if (w) waits.push(w);
    }
    if (waits.length) view.waits = waits;
  }
  if (desc.status.name === 'COMPLETED') view.result = (await handle.result()) as PipelineResult;
  if (desc.status.name === 'FAILED') view.failure = await failureOf(handle);
  return view;
}

/** Running steps: attempt and the last heartbeat (progress, metrics, checkpoint) as the server holds them. */
export function mergeHeartbeats(p: PipelineProgress, desc: WorkflowExecutionDescription): void {
  for (const a of desc.raw.pendingActivities ?? []) {
    const step = p.steps.find((s) => s.id === a.activityId);
    if (!step) continue;
    if (a.attempt) step.attempt = a.attempt;
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (payload) {
      try {
        const hb = defaultPayloadConverter.fromPayload<StepHeartbeat>(payload);
        step.heartbeat = hb;
        step.progress = hb.progress ?? step.progress;
        step.metrics = hb.metrics ?? step.metrics;
        step.checkpoint = hb.checkpoint ?? step.checkpoint;
        step.resumedFrom = hb.resumedFrom ?? step.resumedFrom;
        step.cacheMiss = hb.cacheMiss ?? step.cacheMiss;
      } catch {
        /* details from another version: ignore */
      }
    }
    if (a.lastFailure?.message && step.state === 'running') step.error = `attempt ${(a.attempt ?? 2) - 1} failed: ${a.lastFailure.message}`;
  }
}

type RawPending = NonNullable<WorkflowExecutionDescription['raw']['pendingActivities']>[number];
type ProtoTime = { seconds?: unknown; nanos?: number | null } | null | undefined;

/** Milliseconds of a protobuf Timestamp or Duration (seconds may be a Long). */
function durationMs(t: ProtoTime): number | undefined {
  if (!t) return undefined;
  const sec = t.seconds as number | { toNumber(): number } | null | undefined;
  const secs = sec == null ? 0 : typeof sec === 'number' ? sec : sec.toNumber();
  return secs * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}
function timeOf(t: ProtoTime): Date | undefined {
  const ms = durationMs(t);
  return ms === undefined ? undefined : new Date(ms);
}

/** What the server holds about a step's activity, in plain values. */
export interface PendingStepInfo {
  step: string;
  state: 'scheduled' | 'started' | 'cancel-requested' | 'paused' | 'other';
  attempt: number;
  /** 0: unlimited. */
  maximumAttempts: number;
  lastHeartbeat?: Date;
  lastStarted?: Date;
  scheduled?: Date;
  nextAttempt?: Date;
  lastFailure?: string;
}

export function pendingInfo(a: RawPending): PendingStepInfo {
  const states: Record<number, PendingStepInfo['state']> = { 1: 'scheduled', 2: 'started', 3: 'cancel-requested', 4: 'paused', 5: 'started' };
  return {
    step: a.activityId ?? '?', state: states[Number(a.state)] ?? 'other', attempt: a.attempt || 1, maximumAttempts: a.maximumAttempts ?? 0,
    lastHeartbeat: timeOf(a.lastHeartbeatTime), lastStarted: timeOf(a.lastStartedTime), scheduled: timeOf(a.scheduledTime),
    nextAttempt: timeOf(a.nextAttemptScheduleTime), lastFailure: a.lastFailure?.message ?? undefined,
  };
}

/** A step waiting on the server's clock rather than doing work, and what happens next. */
export interface StepWait {
  step: string;
  why: 'silent' | 'timed-out' | 'backoff' | 'no-worker';
  attempt: number;
  lastHeartbeat?: Date;
  heartbeatTimeoutMs?: number;
  /** When the server gives up on the silent attempt (last heartbeat + heartbeat timeout), or starts the next one. */
  until?: Date;
  text: string;
}

/**
 * A live worker heartbeats a running step at least every second; a step silent for longer than
 * this is shown as waiting for its heartbeat timeout (its worker may have died).
 */
export const SILENT_AFTER_MS = 5000;

function inWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The wait of one pending step, or undefined when it is simply working. */
export function stepWait(a: PendingStepInfo, now: Date, o: { heartbeatMs?: number; queue?: string } = {}): StepWait | undefined {
  const at = (d: Date) => `${d.toISOString().replace(/\.\d+Z$/, 'Z')} (${d > now ? 'in ' : ''}${inWords(Math.abs(d.getTime() - now.getTime()))}${d > now ? '' : ' ago'})`;
  const next = a.maximumAttempts > 0 && a.attempt >= a.maximumAttempts
    ? 'the step fails (no attempts left)'
    : `attempt ${a.attempt + 1}${a.maximumAttempts > 0 ? ` of ${a.maximumAttempts}` : ''} starts`;
  const onQueue = o.queue ? ` on queue ${o.queue}` : '';
  if (a.state === 'started') {
    // The heartbeat of an earlier attempt may be older than this attempt's start.
    const since = [a.lastHeartbeat, a.lastStarted].filter((d): d is Date => !!d).sort((x, y) => y.getTime() - x.getTime())[0];
    if (!since) return undefined;
    const silent = now.getTime() - since.getTime();
    if (silent <= SILENT_AFTER_MS) return undefined;
    const base = { step: a.step, attempt: a.attempt, lastHeartbeat: a.lastHeartbeat, heartbeatTimeoutMs: o.heartbeatMs };
    const heard = a.lastHeartbeat && a.lastHeartbeat >= since ? `last heartbeat ${inWords(silent)} ago` : `no heartbeat since it started ${inWords(silent)} ago`;
    if (o.heartbeatMs === undefined) {
      return { ...base, why: 'silent', text: `attempt ${a.attempt}: ${heard} (its worker may have died): it waits for its heartbeat timeout, then ${next}` };
    }
    const until = new Date(since.getTime() + o.heartbeatMs);
    if (until > now) {
      return { ...base, why: 'silent', until, text: `attempt ${a.attempt}: ${heard} (its worker may have died): it waits for its heartbeat timeout (${inWords(o.heartbeatMs)}), which runs out at ${at(until)}; then ${next}` };
    }
    return { ...base, why: 'timed-out', until, text: `attempt ${a.attempt}: ${heard}; its heartbeat timeout (${inWords(o.heartbeatMs)}) ran out at ${at(until)}: the server is about to time it out, then ${next}` };
  }
  if (a.state === 'scheduled') {
    const after = a.lastFailure ? ` (attempt ${a.attempt - 1}: ${a.lastFailure.split('\n')[0]})` : '';
    if (a.nextAttempt && a.nextAttempt > now) {
      return { step: a.step, why: 'backoff', attempt: a.attempt, until: a.nextAttempt, text: `attempt ${a.attempt} starts at ${at(a.nextAttempt)}${after}` };
    }
    const since = a.nextAttempt ?? a.scheduled;
    if (since && now.getTime() - since.getTime() > SILENT_AFTER_MS) {
      return { step: a.step, why: 'no-worker', attempt: a.attempt, text: `attempt ${a.attempt} waits for a worker${onQueue} since ${at(since)}${after}` };
    }
  }
  return undefined;
}

async function failureOf(handle: WorkflowHandle): Promise<string> {
  try {
    await handle.result();
    return '';
  } catch (err) {
    let e = err as { message?: string; cause?: unknown };
    while (e.cause) e = e.cause as typeof e;
    return e.message ?? String(err);
  }
}

/** The input the run was first started with (the Plan and its options), read from its history. */
export async function runInput(client: Client, id: string): Promise<PipelineInput> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload) throw new Error(`run ${id}: its history has no input`);
  const input = defaultPayloadConverter.fromPayload<PipelineInput>(payload);
  return { plan: input.plan, options: input.options };
}

/** Thrown when a run is asked to do something only a running run can. */
export class RunClosedError extends UserError {
  constructor(id: string, status: string) {
    super(`run ${id} is over (${status.toLowerCase()})`);
  }
}

async function assertRunning(client: Client, id: string): Promise<void> {
  const d = await client.workflow.getHandle(id).describe();
  if (d.status.name !== 'RUNNING') throw new RunClosedError(id, d.status.name);
}

export async function pauseRun(client: Client, id: string): Promise<void> {
  await assertRunning(client, id);
  await client.workflow.getHandle(id).signal(pauseSignal);
}

/**
 * `resume RUN`: a paused run continues; a failed, cancelled, terminated or timed-out run
 * starts again as a new run of the same Plan, which reuses every cached step result, and
 * whose other steps continue from the newest valid checkpoint the same step left in RUN
 * (activities/run-step.ts).
 */
export async function resumeRun(client: Client, id: string, searchAttributes: boolean): Promise<{ kind: 'signalled' | 'restarted'; id: string }> {
  const desc = await client.workflow.getHandle(id).describe();
  if (desc.status.name === 'RUNNING') {
    await client.workflow.getHandle(id).signal(resumeSignal);
    return { kind: 'signalled', id };
  }
  if (desc.status.name === 'COMPLETED') throw new RunClosedError(id, 'succeeded; nothing to resume');
  const input = await runInput(client, id);
  const options = { ...input.options, noCache: false, resumeOf: id };
  const handle = await startRun(client, input.plan, { ...options, searchAttributes });
  return { kind: 'restarted', id: handle.workflowId };
}

export async function cancelRun(client: Client, id: string): Promise<void> {
  await assertRunning(client, id);
  await client.workflow.getHandle(id).cancel();
}

export interface RunSummary {
  id: string;
  pipeline?: string;
  status: string;
  execution: string;
  startTime: Date;
  closeTime?: Date;
}

/** How a closed run reads: Temporal's outcome (a terminated run never got to update its own status). */
export function closedStatus(execution: string): string {
  return execution === 'COMPLETED' ? 'succeeded' : execution === 'TIMED_OUT' ? 'timed out' : execution.toLowerCase();
}

/** Pipeline runs, newest first. */
export async function listRuns(client: Client, limit = 50): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}'` })) {
    out.push({
      id: w.workflowId, pipeline: w.typedSearchAttributes.get(PIPELINE_KEY),
      status: w.status.name === 'RUNNING' ? (w.typedSearchAttributes.get(STATUS_KEY) ?? 'running') : closedStatus(w.status.name),
      execution: w.status.name,
      startTime: w.startTime, closeTime: w.closeTime,
    });
    if (out.length >= limit) break;
  }
  return out;
}
