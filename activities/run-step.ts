/**
 * The step activity: runs one Plan step as a supervised job. On a retry it resumes
 * from the checkpoint of the last heartbeat; it skips the job on a step-cache hit
 * (steps with `cache: false` neither hash their inputs nor record a cache entry; the key
 * covers the runner and the version of the code, runtime/code-version.ts, and a miss is
 * explained in the step log when an entry of the same parameters exists);
 * it heartbeats progress, metrics and the checkpoint (so cancellation reaches it,
 * and clients can draw live bars), and maps job errors onto Temporal failures.
 *
 * In a run started by `resume` of a failed one (`resumeOf`), a step without a checkpoint of
 * its own continues from the newest valid checkpoint of the same step in the old run
 * (runtime/step-identity.ts); its log says where from, or why it starts from zero.
 *
 * When the step ends (done, from the cache, failed or cancelled) it records how in the run folder
 * and refreshes the run's report.html (runtime/run-report.ts); neither can fail the step.
 */
import { appendFileSync } from 'node:fs';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { cacheKey, inputHashesFor, lineageOf, outputHashesFor, StepCache, type KeyComponents } from '../runtime/cache.ts';
import { codeVersions, type CodeVersion } from '../runtime/code-version.ts';
import { isProblem, resolveRunner } from '../runtime/runners.ts';
import { JobCancelledError, JobFailedError, JobUserError } from '../runtime/errors.ts';
import { refreshRunReport, writeStepOutcome, type StepOutcome } from '../runtime/run-report.ts';
import type { ArtifactStore } from '../runtime/store.ts';
import { resumePointFrom, stepIdentity, writeIdentity, type StepIdentity } from '../runtime/step-identity.ts';
import { superviseJob, type JobState } from '../runtime/supervisor.ts';
import type { RunStepInput, RunStepResult, StepHeartbeat } from '../workflows/types.ts';

/** Heartbeats go out at most this often (plus at once when a new checkpoint appears). */
const HEARTBEAT_EVERY_MS = 500;

export function makeRunStep(store: ArtifactStore) {
  return async function runStep(input: RunStepInput): Promise<RunStepResult> {
    const ctx = Context.current();
    const { step, params, runId } = input;
    const attempt = ctx.info.attempt;
    // The step's outcome and the refreshed report: a record for people, never a reason for the step to fail.
    const ended = async (o: Omit<StepOutcome, 'step' | 'attempt' | 'finished_at'>) => {
      try {
        writeStepOutcome(store, runId, { step: step.id, attempt, finished_at: new Date().toISOString(), ...o });
        await refreshRunReport(store, runId);
      } catch (err) {
        ctx.log.warn(`step ${step.id}: the run report was not refreshed: ${(err as Error).message}`);
      }
    };
    const previous = ctx.info.heartbeatDetails as StepHeartbeat | undefined;

    // The key hashes every input file the params name (possibly gigabytes): only for a
    // step that may use the cache. With --no-cache it is still recorded for later runs.
    const cache = new StepCache(store);
    // The step's runner, as its kind declares it (a Plan compiled before `runner:` existed: the kind's default).
    const resolved = resolveRunner(step.uses, step.runner);
    if (isProblem(resolved)) {
      throw ApplicationFailure.nonRetryable(`step "${step.id}" (${step.uses}): ${resolved.problem} (at steps.${step.id}.runner)\n  ${resolved.hint}`, 'UserError');
    }
    const runner = resolved.name;
    let key: string | undefined;
    let code: CodeVersion | undefined;
    let components: KeyComponents | undefined;
    let inputHashes: Record<string, string> | undefined;
    let cacheMiss: string | undefined;
    if (step.cache) {
      code = await codeVersions().get(runner, step.uses);
      inputHashes = inputHashesFor(params);
      key = cacheKey({ kind: step.uses, runner, code, params, inputHashes });
      components = { kind: step.uses, runner, code, inputHashes };
    }
    if (key && components && !input.noCache) {
      const hit = cache.lookup(key);
      if (hit) {
        ctx.log.info(`step ${step.id}: cache hit from run ${hit.runId}`);
        await ended({ state: 'cached', outputs: hit.outputs, cached_from: { run: hit.runId, step: hit.stepId } });
        return { outputs: hit.outputs, cached: true, attempt };
      }
      cacheMiss = cache.explainMiss(key, lineageOf(step.uses, params), components);
    }

    // What this step folder holds, and where to start: the checkpoint of an earlier attempt,
    // else (in a resumed run) the newest of the same step in the run it resumes.
    const outDir = store.stepDir(runId, step.id);
    const logFile = store.stepLog(runId, step.id);
    const identity: StepIdentity = stepIdentity(runId, step, params, key, { runner, inputHashes, code, cacheMiss });
    if (cacheMiss) {
      appendFileSync(logFile, `=== ${new Date().toISOString()} attempt ${attempt}: cache miss: ${cacheMiss}\n`);
      ctx.log.info(`step ${step.id}: cache miss: ${cacheMiss}`);
    }
    let resumeFrom = previous?.checkpoint;
    let resumedFrom: string | undefined;
    if (input.resumeOf && !resumeFrom) {
      const point = resumePointFrom(input.resumeOf, store.stepPath(input.resumeOf, step.id), identity, params);
      appendFileSync(logFile, `=== ${new Date().toISOString()} attempt ${attempt}: ${point.note}\n`);
      ctx.log.info(`step ${step.id}: ${point.note}`);
      resumeFrom = resumedFrom = point.checkpoint;
    }
    identity.resumedFrom = resumeFrom;
    writeIdentity(outDir, identity);

    // Heartbeats: the latest job state, sent on a timer so a silent job still hears cancellation.
    resumedFrom ??= previous?.resumedFrom;
    let last: StepHeartbeat = { checkpoint: resumeFrom, ...(resumedFrom ? { resumedFrom } : {}), ...(cacheMiss ? { cacheMiss } : {}) };
    const beat = () => ctx.heartbeat({ ...last, at: Date.now() } satisfies StepHeartbeat);
    let sentCheckpoint = last.checkpoint;
    const onState = (s: JobState) => {
      last = { ...last, progress: s.progress, metrics: s.metrics, checkpoint: s.checkpoint?.path ?? last.checkpoint };
      if (last.checkpoint !== sentCheckpoint) {
        sentCheckpoint = last.checkpoint;
        beat();
        try {
          writeIdentity(outDir, { ...identity, checkpoint: last.checkpoint });
        } catch {
          /* a record for a later resume, not the work: never fail the step over it */
        }
      }
    };
    // No heartbeat up front: a step that ends within HEARTBEAT_EVERY_MS never needs one.
    const timer = setInterval(beat, HEARTBEAT_EVERY_MS);

    try {
      const outcome = await superviseJob({
        kind: step.uses, runner, runId, stepId: step.id, attempt, params, outDir,
        resumeFrom,
        signal: ctx.cancellationSignal,
        graceMs: step.timeouts.graceMs,
        logFile,
        metricsFile: store.metricsFile(runId, step.id),
        onState,
      });
      // Before the cache entry: a step whose output is its own folder is hashed with this record in it.
      writeIdentity(outDir, { ...identity, checkpoint: outcome.checkpoint?.path ?? last.checkpoint, done: true });
      if (key) {
        cache.record(key, {
          runId, stepId: step.id, outputs: outcome.outputs,
          outputHashes: outputHashesFor(outcome.outputs), finishedAt: new Date().toISOString(),
          components, lineage: lineageOf(step.uses, params),
        });
      }
      await ended({ state: 'succeeded', outputs: outcome.outputs });
      return {
        outputs: outcome.outputs, cached: false, attempt, progress: last.progress,
        metrics: outcome.metrics ?? last.metrics, checkpoint: outcome.checkpoint?.path ?? last.checkpoint,
        ...(last.resumedFrom ? { resumedFrom: last.resumedFrom } : {}),
        ...(cacheMiss ? { cacheMiss } : {}),
      };
    } catch (err) {
      await ended({ state: err instanceof JobCancelledError ? 'cancelled' : 'failed', error: (err as Error).message.split('\n')[0] });
      if (err instanceof JobUserError) {
        const where = err.where ? ` (at ${err.where})` : '';
        const hint = err.hint ? `\n  ${err.hint}` : '';
        throw ApplicationFailure.nonRetryable(`${err.message}${where}${hint}`, 'UserError');
      }
      if (err instanceof JobCancelledError) {
        if (err.checkpoint) {
          last = { ...last, checkpoint: err.checkpoint.path };
          beat();
        }
        throw new CancelledFailure(err.message);
      }
      if (err instanceof JobFailedError) {
        const tail = err.logTail ? `\n${err.logTail}` : '';
        throw ApplicationFailure.retryable(`${err.message}${tail}`, 'JobFailed');
      }
      throw err;
    } finally {
      clearInterval(timer);
    }
  };
}
