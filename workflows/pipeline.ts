/**
 * The one workflow: an interpreter for any compiled Plan. It starts every step whose
 * `needs` are done (independent steps run in parallel), evaluates `if`, resolves the
 * `with` expressions, and runs the step activity with the step's retry policy,
 * timeouts and task queue. Query `progress`; signals `pause` / `resume`. The whole
 * state is plain JSON, so a long run continues as new without losing anything.
 *
 * Deterministic code only: no Node imports, time and randomness from the sandbox.
 */
import {
  ActivityCancellationType, ApplicationFailure, CancellationScope, condition, continueAsNew, isCancellation,
  proxyActivities, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { Plan, PlanStep } from '../dsl/plan.ts';
import { PIPELINE_KEY, STATUS_KEY, pauseSignal, progressQuery, resumeSignal } from './definitions.ts';
import { pipelineInputOf } from './input.ts';
import { evaluateCondition, resolveWith, type ExprContext } from '../dsl/expr.ts';
import type {
  CarriedState, PipelineActivities, PipelineInput, PipelineResult, RunStatus, RunStepResult, StepRecord,
} from './types.ts';

const DONE = new Set(['succeeded', 'cached', 'skipped']);
const TERMINAL = new Set([...DONE, 'failed', 'cancelled']);

const { prepareRun } = proxyActivities<PipelineActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

function stepActivity(step: PlanStep) {
  const r = step.retry;
  return proxyActivities<PipelineActivities>({
    activityId: step.id,
    taskQueue: step.queue,
    scheduleToCloseTimeout: step.timeouts.stepMs,
    startToCloseTimeout: step.timeouts.attemptMs,
    heartbeatTimeout: step.timeouts.heartbeatMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: r.maximumAttempts,
      initialInterval: r.initialIntervalMs,
      backoffCoefficient: r.backoffCoefficient,
      maximumInterval: r.maximumIntervalMs,
      nonRetryableErrorTypes: ['UserError'],
    },
  }).runStep;
}

export async function pipeline(given: PipelineInput | Plan): Promise<PipelineResult> {
  const input = pipelineInputOf(given);
  const { plan } = input;
  const options = input.options ?? {};
  const info = workflowInfo();
  const runId = info.workflowId;
  const state: CarriedState = input.carry ?? {
    runDir: '',
    startedAt: new Date().toISOString(),
    paused: false,
    generation: 0,
    steps: Object.fromEntries(plan.steps.map((s) => [s.id, {
      id: s.id, uses: s.uses, needs: s.needs, queue: s.queue, state: 'pending',
    } satisfies StepRecord])),
  };
  let status: RunStatus = state.paused ? 'paused' : 'running';
  let version = 0; // bumped on every change the main loop must react to
  const bump = () => void version++;

  const setStatus = (s: RunStatus) => {
    status = s;
    if (input.searchAttributes) upsertSearchAttributes([{ key: STATUS_KEY, value: s }]);
  };
  setHandler(progressQuery, () => ({
    runId, pipeline: plan.name, planHash: plan.hash, status, paused: state.paused, runDir: state.runDir,
    startedAt: state.startedAt, generation: state.generation,
    steps: plan.steps.map((s) => state.steps[s.id]),
  }));
  setHandler(pauseSignal, () => {
    if (state.paused || TERMINAL.has(status)) return;
    state.paused = true;
    setStatus('paused');
    bump();
  });
  setHandler(resumeSignal, () => {
    if (!state.paused) return;
    state.paused = false;
    if (status === 'paused') setStatus('running');
    bump();
  });

  if (input.searchAttributes && !input.carry) {
    upsertSearchAttributes([{ key: PIPELINE_KEY, value: plan.name }, { key: STATUS_KEY, value: status }]);
  }
  const ctx = (): ExprContext => ({
    steps: Object.fromEntries(Object.values(state.steps)
      .filter((r) => DONE.has(r.state))
      .map((r) => [r.id, r.state === 'skipped' ? null : { outputs: r.outputs ?? {} }])),
    run: { id: runId, dir: state.runDir, startedAt: state.startedAt, pipeline: plan.name },
  });

  const running = new Map<string, { scope: CancellationScope; done: Promise<void> }>();
  let failure: { step: PlanStep; message: string } | undefined;
  let finishedThisRun = 0;
  const canAfter = options.continueAsNewAfter ?? 500;
  const wantContinue = () => finishedThisRun >= canAfter || workflowInfo().continueAsNewSuggested;

  const launch = (step: PlanStep, params: Record<string, unknown>) => {
    const rec = state.steps[step.id];
    rec.state = 'running';
    rec.startedAt = new Date().toISOString();
    const run = stepActivity(step);
    const scope = new CancellationScope();
    const done = scope
      .run(() => run({
        runId, runDir: state.runDir, pipeline: plan.name, step, params, noCache: !!options.noCache,
        ...(options.resumeOf ? { resumeOf: options.resumeOf } : {}),
      }))
      .then(
        (res: RunStepResult) => {
          Object.assign(rec, {
            state: res.cached ? 'cached' : 'succeeded', outputs: res.outputs, attempt: res.attempt,
            progress: res.progress, metrics: res.metrics, checkpoint: res.checkpoint,
            ...(res.resumedFrom ? { resumedFrom: res.resumedFrom } : {}),
            ...(res.cacheMiss ? { cacheMiss: res.cacheMiss } : {}),
          });
        },
        (err: unknown) => {
          if (isCancellation(err)) {
            rec.state = 'cancelled';
            return;
          }
          rec.state = 'failed';
          rec.error = failureMessage(err);
          failure ??= { step, message: rec.error };
        },
      )
      .finally(() => {
        rec.finishedAt = new Date().toISOString();
        running.delete(step.id);
        finishedThisRun++;
        bump();
      });
    running.set(step.id, { scope, done });
  };

  /** Starts or skips every pending step whose needs are done. Returns true if anything changed. */
  const schedule = (): boolean => {
    let changed = false;
    for (const step of plan.steps) {
      const rec = state.steps[step.id];
      if (rec.state !== 'pending' || !step.needs.every((n) => DONE.has(state.steps[n].state))) continue;
      const skippedNeed = step.needs.find((n) => state.steps[n].state === 'skipped');
      let run = true;
      try {
        if (step.if !== undefined) run = evaluateCondition(step.if, ctx());
        else if (skippedNeed) {
          run = false;
          rec.reason = `needs ${skippedNeed}, which was skipped`;
        }
        if (!run) {
          rec.reason ??= step.if === 'false' ? 'its if: condition is false' : `if: ${step.if} is false`;
          rec.state = 'skipped';
          rec.finishedAt = new Date().toISOString();
        } else launch(step, resolveWith(step.uses, step.with, ctx()));
      } catch (err) {
        rec.state = 'failed';
        rec.error = `${where(step)}: ${(err as Error).message}`;
        failure ??= { step, message: rec.error };
      }
      changed = true;
      if (failure) break;
    }
    return changed;
  };

  try {
    if (!state.runDir) state.runDir = (await prepareRun({ runId, plan, startedAt: state.startedAt })).dir;
    for (;;) {
      if (failure) break;
      if (!state.paused && !wantContinue()) {
        if (schedule()) continue; // a skipped step may unblock others at once
      }
      if (plan.steps.every((s) => TERMINAL.has(state.steps[s.id].state))) break;
      if (running.size === 0 && wantContinue()) {
        state.generation++;
        await continueAsNew<typeof pipeline>({ ...input, carry: state });
      }
      const seen = version;
      await condition(() => version !== seen);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(() => Promise.all([...running.values()].map((r) => r.done)));
    for (const s of plan.steps) if (state.steps[s.id].state === 'pending') state.steps[s.id].state = 'cancelled';
    setStatus('cancelled');
    throw err;
  }

  if (failure) {
    // Fail fast: stop the steps still running, then report the first failure.
    for (const r of running.values()) r.scope.cancel();
    await Promise.all([...running.values()].map((r) => r.done));
    setStatus('failed');
    throw ApplicationFailure.nonRetryable(`step "${failure.step.id}" failed: ${failure.message}`, 'StepFailed');
  }
  setStatus('succeeded');
  return {
    runId, pipeline: plan.name, status: 'succeeded', runDir: state.runDir,
    steps: Object.fromEntries(plan.steps.map((s) => {
      const r = state.steps[s.id];
      return [s.id, { state: r.state, outputs: r.state === 'skipped' ? null : r.outputs ?? {} }];
    })),
  };
}

function where(step: PlanStep): string {
  return `${step.source.file}:${step.source.line}:${step.source.col}`;
}

/** The innermost message of an activity failure: the job's own words. */
function failureMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; type?: string } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
