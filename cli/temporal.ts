/**
 * What every Temporal-facing command shares: connecting (--address/--namespace/--profile,
 * TEMPORAL_* variables, temporal.toml, else the embedded server of the store), turning
 * "not found" and "unreachable" into plain messages, starting a background worker, and the Web UI link of a run.
 * It loads the Temporal client: commands import it inside their action, never at the top.
 */
import { openSync, closeSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { WorkflowNotFoundError, ScheduleNotFoundError } from '@temporalio/client';
import { connectTemporal, type Temporal } from '../runtime/client.ts';
import { ArtifactStore } from '../runtime/store.ts';
import { PROJECT_ROOT } from '../runtime/temporal.ts';
import { userError } from './user-error.ts';
import { connectionArgs, connectionFlags } from './connection-flags.ts';

/** Connects (starting the embedded server if needed), runs fn, closes the connection. */
export async function withTemporal<T>(fn: (t: Temporal, store: ArtifactStore) => Promise<T>): Promise<T> {
  const store = new ArtifactStore();
  // Unreachable servers, missing namespaces and bad settings are user errors naming the address, namespace and their origin.
  const t = await connectTemporal({ store, flags: connectionFlags, log: (l) => process.stderr.write(l + '\n') });
  try {
    return await fn(t, store);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw userError(`no run "${err.workflowId}" on ${t.address} in namespace ${t.namespace} (\`doctor-agent list\` shows the runs)`);
    }
    if (err instanceof ScheduleNotFoundError) {
      throw userError(`no schedule "${err.scheduleId}" (\`doctor-agent schedule list\` shows them)`);
    }
    throw err;
  } finally {
    await t.close().catch(() => {});
  }
}

/** Link to a run in the Web UI (embedded server only). */
export function runLink(t: Temporal, id: string): string | undefined {
  return t.server ? `${t.server.uiAddress}/namespaces/${encodeURIComponent(t.namespace)}/workflows/${encodeURIComponent(id)}` : undefined;
}

/**
 * Starts `doctor-agent worker` in the background, detached from the terminal, polling
 * `queues` until run `untilDone` is over. Its output goes to the run folder's worker.log.
 */
export function spawnBackgroundWorker(t: Temporal, store: ArtifactStore, queues: string[], untilDone: string): { pid: number; log: string } {
  const dir = store.runDir(untilDone);
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'worker.log');
  const fd = openSync(log, 'a');
  // The same server and namespace; TLS and API key come from the same environment and profile.
  const args = ['worker', '--queues', queues.join(','), '--until-done', untilDone,
    ...connectionArgs({ address: t.address, namespace: t.namespace, profile: connectionFlags.profile })];
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), ...args], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, DOCTOR_AGENT_HOME: store.root },
  });
  closeSync(fd);
  child.unref();
  return { pid: child.pid ?? 0, log };
}

/** The step queues a Plan uses. */
export function planQueues(plan: { steps: { queue: string }[] }): string[] {
  return [...new Set(plan.steps.map((s) => s.queue))];
}
