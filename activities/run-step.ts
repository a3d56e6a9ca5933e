/**
 * The step activity: runs one Plan step as a supervised job. On a retry it resumes
 * from the checkpoint of the last heartbeat; it skips the job on a step-cache hit
 * (steps with `cache: false` neither hash their inputs nor record a cache entry);
 * it heartbeats progress, metrics and the checkpoint (so cancellation reaches it,
 * and clients can draw live bars), and maps job errors onto Temporal failures.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { cacheKey, inputHashesFor, outputHashesFor, StepCache } from '../runtime/cache.ts';
import { JobCancelledError, JobFailedError, JobUserError } from '../runtime/errors.ts';
import type { ArtifactStore } from '../runtime/store.ts';
import { superviseJob, type JobState } from '../runtime/supervisor.ts';
import type { RunStepInput, RunStepResult, StepHeartbeat } from '../workflows/types.ts';

/** Heartbeats go out at most this often (plus at once when a new checkpoint appears). */
const HEARTBEAT_EVERY_MS = 500;

export function makeRunStep(store: ArtifactStore) {
  return async function runStep(input: RunStepInput): Promise<RunStepResult> {
    const ctx = Context.current();
    const { step, params, runId } = input;
    const attempt = ctx.info.attempt;
    const previous = ctx.info.heartbeatDetails as StepHeartbeat | undefined;

    // The key hashes every input file the params name (possibly gigabytes): only for a
    // step that may use the cache. With --no-cache it is still recorded for later runs.
    const cache = new StepCache(store);
    const key = step.cache ? cacheKey({ kind: step.uses, params, inputHashes: inputHashesFor(params) }) : undefined;
    if (key && !input.noCache) {
      const hit = cache.lookup(key);
      if (hit) {
        ctx.log.info(`step ${step.id}: cache hit from run ${hit.runId}`);
        return { outputs: hit.outputs, cached: true, attempt };
      }
    }

    // Heartbeats: the latest job state, sent on a timer so a silent job still hears cancellation.
    let last: StepHeartbeat = { checkpoint: previous?.checkpoint };
    const beat = () => ctx.heartbeat({ ...last, at: Date.now() } satisfies StepHeartbeat);
    let sentCheckpoint = last.checkpoint;
    const onState = (s: JobState) => {
      last = { progress: s.progress, metrics: s.metrics, checkpoint: s.checkpoint?.path ?? last.checkpoint };
      if (last.checkpoint !== sentCheckpoint) {
        sentCheckpoint = last.checkpoint;
        beat();
      }
    };
    // No heartbeat up front: a step that ends within HEARTBEAT_EVERY_MS never needs one.
    const timer = setInterval(beat, HEARTBEAT_EVERY_MS);

    try {
      const outDir = store.stepDir(runId, step.id);
      const outcome = await superviseJob({
        kind: step.uses, runId, stepId: step.id, attempt, params, outDir,
        resumeFrom: previous?.checkpoint,
        signal: ctx.cancellationSignal,
        logFile: store.stepLog(runId, step.id),
        metricsFile: store.metricsFile(runId, step.id),
        onState,
      });
      if (key) {
        cache.record(key, {
          runId, stepId: step.id, outputs: outcome.outputs,
          outputHashes: outputHashesFor(outcome.outputs), finishedAt: new Date().toISOString(),
        });
      }
      return {
        outputs: outcome.outputs, cached: false, attempt, progress: last.progress,
        metrics: outcome.metrics ?? last.metrics, checkpoint: outcome.checkpoint?.path ?? last.checkpoint,
      };
    } catch (err) {
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
