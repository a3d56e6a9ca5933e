/**
 * The worker: polls the workflow task queue (the Plan interpreter) and the step
 * queues (e.g. cpu, gpu) for activities. One Temporal Worker per task queue, all in
 * this process. `doctor-agent worker` and `doctor-agent run` both use it.
 *
 * Shutdown (SIGINT/SIGTERM): steps that finish within SHUTDOWN_GRACE still complete;
 * then running steps are cancelled, their jobs get SIGTERM and write a checkpoint
 * (the supervisor's grace period), and the step is retried elsewhere from it.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities/index.ts';
import { codeVersions } from './runtime/code-version.ts';
import { ArtifactStore } from './runtime/store.ts';
import type { ConnectOptions, ConnectionTarget, ResolvedTarget } from './runtime/client.ts';
import { NAMESPACE } from './runtime/temporal.ts';
import { workflowBundle } from './runtime/workflow-bundle.ts';
import { WORKFLOW_QUEUE } from './workflows/types.ts';

export const DEFAULT_QUEUES = ['cpu', 'gpu'];
/** Time for steps about to finish to complete, before running ones are asked to checkpoint and stop. */
export const SHUTDOWN_GRACE = '2s';
/**
 * Longest wait for jobs to checkpoint after that: above the longest default step `grace`
 * (SIGTERM → SIGKILL, 5m for training steps); a step given a longer grace may be cut short.
 */
export const SHUTDOWN_FORCE = '6m';

export interface WorkerSetOptions extends Partial<Omit<ConnectionTarget, 'address'>> {
  /** Where the server is; namespace (default "default"), TLS, API key and metadata as resolved by runtime/client.ts. */
  address: string;
  store: ArtifactStore;
  /** Activity task queues to poll (the workflow queue is always polled unless `workflows` is false). */
  queues?: string[];
  workflows?: boolean;
  identity?: string;
  /** Called once connected, before the workers are created (e.g. to check the namespace). */
  onConnected?: (connection: NativeConnection) => Promise<void>;
  /** Turns a failed connection into the error to throw (e.g. one naming where the settings came from). */
  connectError?: (err: unknown) => Error;
  /** Test hook: overrides of Temporal worker options. */
  overrides?: Partial<WorkerOptions>;
}

export interface WorkerSet {
  workers: Worker[];
  connection: NativeConnection;
  queues: string[];
  /** Resolves when every worker stopped (after shutdown()). Rejects if one fails. */
  run(): Promise<void>;
  shutdown(): void;
}

let runtimeInstalled = false;

function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  // Signals are handled by the caller (the CLI decides what Ctrl-C means); logs at warn and above only.
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger((process.env.DOCTOR_AGENT_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN', (entry) => {
      // Expected on activity-only queues: not worth a warning.
      if (/^No (workflows|Nexus services) registered/.test(entry.message)) return;
      console.error(`${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${entry.message}`, entry.meta ?? '');
    }),
    telemetryOptions: { logging: { filter: 'WARN', forward: {} } },
  });
}

export async function createWorkerSet(o: WorkerSetOptions): Promise<WorkerSet> {
  installRuntime();
  const { connectionOptions } = await import('./runtime/client.ts');
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(connectionOptions({ ...o, namespace: o.namespace ?? NAMESPACE }));
  } catch (err) {
    throw o.connectError ? o.connectError(err) : err;
  }
  try {
    await o.onConnected?.(connection);
  } catch (err) {
    await connection.close().catch(() => {});
    throw err;
  }
  const activities = createActivities(o.store);
  const queues = [...new Set([...(o.workflows === false ? [] : [WORKFLOW_QUEUE]), ...(o.queues ?? DEFAULT_QUEUES)])];
  // The import graphs of the step kinds' sources (the code version in the step-cache key),
  // built in the background now rather than by the first step; kept for the whole process.
  if (queues.some((q) => q !== WORKFLOW_QUEUE)) void codeVersions().warm().catch(() => {});
  const common: Partial<WorkerOptions> = {
    connection,
    namespace: o.namespace ?? NAMESPACE,
    identity: o.identity ?? `doctor-agent-${process.pid}`,
    activities,
    shutdownGraceTime: SHUTDOWN_GRACE,
    shutdownForceTime: SHUTDOWN_FORCE,
    // Heartbeat details reach the server at least every second: live progress bars, fresh checkpoints.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    // After a worker crash, workflow tasks leave its sticky queue quickly.
    stickyQueueScheduleToStartTimeout: '3s',
    ...o.overrides,
  };
  const workers: Worker[] = [];
  for (const taskQueue of queues) {
    const withWorkflows = taskQueue === WORKFLOW_QUEUE;
    workers.push(await Worker.create({
      ...common,
      taskQueue,
      ...(withWorkflows ? { workflowBundle: await workflowBundle() } : {}),
    } as WorkerOptions));
  }
  return {
    workers,
    connection,
    queues,
    async run() {
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        await connection.close().catch(() => {});
      }
    },
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/**
 * A worker set on the server the connection settings name (or the embedded one, started if
 * needed): a server that cannot be reached or lacks the namespace is a one-line user error.
 */
export async function connectWorkerSet(
  connect: ConnectOptions,
  o: Omit<WorkerSetOptions, 'address' | keyof ConnectionTarget>,
): Promise<{ set: WorkerSet; target: ResolvedTarget }> {
  const { resolveTarget, ensureNamespace, unreachable } = await import('./runtime/client.ts');
  const target = await resolveTarget(connect);
  const set = await createWorkerSet({
    ...o, address: target.address, namespace: target.namespace, tls: target.tls, apiKey: target.apiKey, metadata: target.metadata,
    onConnected: (c) => ensureNamespace(c, target),
    connectError: (err) => unreachable(target, err),
  });
  return { set, target };
}

/**
 * `node --import tsx worker.ts [queues]`: a worker on the store of DOCTOR_AGENT_HOME and the
 * Temporal server of the connection settings (TEMPORAL_* variables, temporal.toml), else the embedded one.
 */
if (import.meta.url === `file://${process.argv[1]}`) {
  const store = new ArtifactStore();
  const queues = process.argv[2]?.split(',').filter(Boolean);
  const { set, target } = await connectWorkerSet({ store }, { store, queues });
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => set.shutdown());
  console.log(`worker ${process.pid} polling ${set.queues.join(', ')} at ${target.address} (namespace ${target.namespace})`);
  await set.run();
}
