/**
 * Orchestration cost of the runtime, on a real dev server:
 *  - per-step overhead: a chain of N trivial command steps (`true`, each needing the
 *    previous one) run as a pipeline, minus the same N commands run one after the other
 *    directly, divided by N; median over several runs. Target: under 50 ms a step.
 *  - worker restart after kill -9: a worker running a job is killed with SIGKILL and a
 *    new worker process started; we time (a) until the new worker polls and (b) until
 *    the job runs again. (b) also waits for the server to notice the lost attempt (the
 *    step's heartbeat timeout), so it is reported with that timeout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { WorkflowHandle } from '@temporalio/client';
import { startRun } from '../runtime/runs.ts';
import { cleanupScope, FIXTURES, makePlan, spawnWorker, startTestServer, startWorker, waitFor } from '../test/temporal/helpers.ts';
import { median } from './lib/stats.ts';

const STEPS = Number(process.env.BENCH_STEPS ?? 20);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const HEARTBEAT_MS = 2000;
/** Worker-restart measurements (0 to skip them, e.g. while profiling the per-step cost). */
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 3);

const round = (x: number) => Math.round(x * 10) / 10;

export async function run(): Promise<object> {
  const scope = cleanupScope();
  try {
    const s = await startTestServer(scope);
    const worker = await startWorker(scope, s);

    const chain = makePlan('overhead', Array.from({ length: STEPS }, (_, i) => ({
      id: `s${i}`, needs: i ? [`s${i - 1}`] : [], with: { run: ['true'] },
    })));
    await (await startRun(s.client, chain)).result(); // warm-up: bundle, caches, JIT

    const phases: Record<string, number>[] = [];
    const pipelineMs: number[] = [];
    const directMs: number[] = [];
    const pipelineCpu: number[] = [];
    const directCpu: number[] = [];
    const cpuNow = () => cpuMs('self', true) + cpuMs(String(s.info.pid), false);
    for (let r = 0; r < REPEATS; r++) {
      let c0 = cpuNow();
      let t0 = performance.now();
      const h = await startRun(s.client, chain);
      await h.result();
      pipelineMs.push(performance.now() - t0);
      phases.push(await stepPhases(h));
      pipelineCpu.push(cpuNow() - c0);
      c0 = cpuNow();
      t0 = performance.now();
      for (let i = 0; i < STEPS; i++) await execa('true');
      directMs.push(performance.now() - t0);
      directCpu.push(cpuNow() - c0);
    }
    const perStep = pipelineMs.map((p, i) => (p - directMs[i]) / STEPS);

    // Worker restart after kill -9 (the in-process worker stops so the child workers get the work).
    worker.shutdown();
    await worker.run().catch(() => {});
    const restarts: { workerReadyMs: number; jobRunningMs: number }[] = [];
    for (let r = 0; r < RESTARTS; r++) restarts.push(await restartOnce(s));

    return {
      cpus: cpus().length,
      load_average_1m: round(loadavg()[0]),
      steps: STEPS,
      repeats: REPEATS,
      pipeline_ms: pipelineMs.map(round),
      direct_ms: directMs.map(round),
      overhead_per_step_ms: round(median(perStep)),
      overhead_per_step_all_ms: perStep.map(round),
      target_per_step_ms: 50,
      // CPU time (this process with its finished children, plus the Temporal server) per step:
      // what the overhead would cost on an otherwise idle machine, whatever else runs here.
      cpu_overhead_per_step_ms: round(median(pipelineCpu.map((p, i) => (p - directCpu[i]) / STEPS))),
      // Where a step's time goes, from the server's event times (median per step, ms):
      // activity dispatch (scheduled → started on the worker), the activity itself (job
      // included), workflow task dispatch and the workflow task on the worker.
      step_phases_ms: Object.fromEntries(Object.keys(phases[0] ?? {}).map((k) => [k, round(median(phases.map((p) => p[k])))])),
      cpu_pipeline_ms: pipelineCpu.map(round),
      cpu_direct_ms: directCpu.map(round),
      restart: RESTARTS === 0 ? null : {
        heartbeat_timeout_ms: HEARTBEAT_MS,
        worker_ready_ms: round(median(restarts.map((x) => x.workerReadyMs))),
        job_running_again_ms: round(median(restarts.map((x) => x.jobRunningMs))),
        all: restarts.map((x) => ({ worker_ready_ms: round(x.workerReadyMs), job_running_again_ms: round(x.jobRunningMs) })),
      },
    };
  } finally {
    await scope.close();
  }
}

/** Median time per step of each phase, from the event times of one run's history. */
async function stepPhases(h: WorkflowHandle): Promise<Record<string, number>> {
  const events = (await h.fetchHistory()).events ?? [];
  const ms = (e: (typeof events)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const out: Record<string, number[]> = { activity_dispatch: [], activity: [], workflow_task_dispatch: [], workflow_task: [] };
  for (const e of events) {
    const a = e.activityTaskCompletedEventAttributes;
    if (a) {
      const sched = byId.get(Number(a.scheduledEventId));
      const start = byId.get(Number(a.startedEventId));
      if (sched && start) {
        out.activity_dispatch.push(ms(start) - ms(sched));
        out.activity.push(ms(e) - ms(start));
      }
    }
    const w = e.workflowTaskCompletedEventAttributes;
    if (w) {
      const sched = byId.get(Number(w.scheduledEventId));
      const start = byId.get(Number(w.startedEventId));
      if (sched && start) {
        out.workflow_task_dispatch.push(ms(start) - ms(sched));
        out.workflow_task.push(ms(e) - ms(start));
      }
    }
  }
  return Object.fromEntries(Object.entries(out).map(([k, xs]) => [k, xs.length ? median(xs) : 0]));
}

/** user+system CPU time of a process from /proc (with its reaped children when asked), in ms. */
function cpuMs(pid: string, children: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // Fields 14-17 of stat (utime, stime, cutime, cstime), counted from field 3 here.
    const ticks = f[11] + f[12] + (children ? f[13] + f[14] : 0);
    return (ticks * 1000) / 100;
  } catch {
    return 0; // no /proc: CPU figures read 0
  }
}

async function restartOnce(s: Awaited<ReturnType<typeof startTestServer>>) {
  const first = spawnWorker(s);
  const plan = makePlan('restart', [{
    id: 'count',
    with: {
      run: [process.execPath, join(FIXTURES, 'counter.mjs'), '--n', 400, '--delay', 50, '--every', 5],
      checkpoints: 'ckpt/step-*.json',
      resume_args: ['--resume', '{checkpoint}'],
    },
    retry: { maximumAttempts: 5, initialIntervalMs: 100, backoffCoefficient: 1, maximumIntervalMs: 100 },
    timeouts: { stepMs: 300_000, attemptMs: 300_000, heartbeatMs: HEARTBEAT_MS },
  }]);
  const h = await startRun(s.client, plan);
  const starts = join(s.store.stepPath(h.workflowId, 'count'), 'starts.log');
  const lines = () => (existsSync(starts) ? readFileSync(starts, 'utf8').trim().split('\n').length : 0);
  await waitFor('the job to run', () => (lines() >= 1 ? true : undefined), 120_000);
  await sleep(1000);
  first.kill('SIGKILL');
  await first;
  const t0 = performance.now();
  const second = spawnWorker(s);
  let workerReadyMs = 0;
  second.stdout?.on('data', (d: Buffer) => {
    if (!workerReadyMs && /polling/.test(String(d))) workerReadyMs = performance.now() - t0;
  });
  await waitFor('the job to run again', () => (lines() >= 2 ? true : undefined), 120_000);
  const jobRunningMs = performance.now() - t0;
  await h.cancel();
  await h.result().catch(() => {});
  second.kill('SIGTERM');
  await second;
  return { workerReadyMs, jobRunningMs };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await run(), null, 2));
