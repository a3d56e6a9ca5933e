/**
 * Connecting to Temporal: the address, namespace, API key and TLS settings of
 * runtime/connection.ts (flags, TEMPORAL_* variables, a temporal.toml profile), or the
 * embedded dev server of the artifact store (started on demand) when no address is
 * configured. Also registers the search attributes the workflow sets, when the server
 * lets us, and on the embedded server creates a namespace that is not there yet.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { UserError } from '../contract/errors.ts';
import { describeTarget, loadConnectionSettings, type ConnectionFlags, type ConnectionSettings } from './connection.ts';
import { ArtifactStore } from './store.ts';
import { NAMESPACE, SEARCH_ATTRIBUTES, serverPaths, startServer, type ServerInfo } from './temporal.ts';

/** Everything a client or a worker needs to connect, once resolved. */
export interface ConnectionTarget {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: TLSConfig | boolean;
  metadata?: Record<string, string>;
}

export interface ResolvedTarget extends ConnectionTarget {
  settings: ConnectionSettings;
  /** The embedded server, when that is what we connect to. */
  server?: ServerInfo;
}

export interface Temporal {
  client: Client;
  connection: Connection;
  address: string;
  namespace: string;
  target: ResolvedTarget;
  /** The embedded server, when that is what we connected to. */
  server?: ServerInfo;
  /** Whether DoctorAgentPipeline / DoctorAgentStatus exist on the server. */
  searchAttributes: boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  store?: ArtifactStore;
  /** Command-line settings: they win over the environment and temporal.toml. */
  flags?: ConnectionFlags;
  /** Connect here, whatever the settings say (the namespace and TLS still come from them). */
  address?: string;
  /** An already resolved target: no settings are read, no server is started. */
  target?: ResolvedTarget;
  /** Print a line when the embedded server had to be started. */
  log?: (line: string) => void;
  /** Milliseconds to wait for the server (default 10 s). */
  connectTimeoutMs?: number;
}

/** Thrown when the server cannot be reached or has no such namespace: one line naming both and where they came from. */
export class TemporalUnreachableError extends UserError {
  constructor(message: string) {
    super(message);
  }
}

/** The target to use: the configured address, or the embedded server (started if needed). */
export async function resolveTarget(opts: ConnectOptions = {}): Promise<ResolvedTarget> {
  if (opts.target) return opts.target;
  const settings = loadConnectionSettings(opts.address ? { ...opts.flags, address: opts.address } : opts.flags);
  const { namespace } = settings;
  if (settings.address) {
    return { address: settings.address, namespace, apiKey: settings.apiKey, tls: settings.tls, metadata: settings.metadata, settings };
  }
  const store = opts.store ?? new ArtifactStore();
  let started: { info: ServerInfo; started: boolean };
  try {
    started = await startServer(serverPaths(store));
  } catch (err) {
    throw new TemporalUnreachableError(`cannot start the embedded Temporal server (no address configured): ${(err as Error).message}`);
  }
  const { info } = started;
  if (started.started) opts.log?.(`Started the embedded Temporal server at ${info.address} (Web UI ${info.uiAddress})`);
  // The embedded server speaks plain gRPC without authentication: TLS and API keys are for a configured address only.
  return { address: info.address, namespace, settings, server: info };
}

/** One line for a connection that failed: the address, the namespace, where each came from, and why. */
export function unreachable(t: ResolvedTarget, err: unknown): TemporalUnreachableError {
  const why = String((err as Error)?.message ?? err).split('\n')[0]!.trim();
  return new TemporalUnreachableError(`cannot reach Temporal at ${describeTarget(t.address, t.settings)}: ${why}`);
}

/** The options of Connection.connect / NativeConnection.connect for a target. */
export function connectionOptions(t: ConnectionTarget) {
  return {
    address: t.address,
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
    ...(t.apiKey !== undefined ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: t.metadata } : {}),
  };
}

export async function connectTemporal(opts: ConnectOptions = {}): Promise<Temporal> {
  const target = await resolveTarget(opts);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(target), connectTimeout: opts.connectTimeoutMs ?? 10_000 });
  } catch (err) {
    throw unreachable(target, err);
  }
  try {
    await ensureNamespace(connection, target);
  } catch (err) {
    await connection.close().catch(() => {});
    throw err;
  }
  const client = new Client({ connection, namespace: target.namespace });
  const searchAttributes = await ensureSearchAttributes(connection, target.namespace);
  return {
    client, connection, address: target.address, namespace: target.namespace, target, server: target.server, searchAttributes,
    close: () => connection.close(),
  };
}

const isNotFound = (err: unknown) => (err as { code?: number }).code === 5; // gRPC NOT_FOUND

/**
 * Makes sure the namespace exists: the embedded server gets it created (it is ours);
 * on any other server a missing namespace is the user's error. Other refusals (a key
 * that may not describe namespaces) are left to the calls that follow.
 */
export async function ensureNamespace(connection: Pick<Connection, 'workflowService'>, t: ResolvedTarget): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace: t.namespace });
    return;
  } catch (err) {
    if (!isNotFound(err)) {
      if ((err as { code?: number }).code === 14 /* UNAVAILABLE */) throw unreachable(t, err);
      return;
    }
    if (!t.server) {
      throw new TemporalUnreachableError(
        `no namespace "${t.namespace}" at ${describeTarget(t.address, t.settings)}; create it (\`temporal operator namespace create\`) or choose another`,
      );
    }
  }
  await connection.workflowService.registerNamespace({
    namespace: t.namespace,
    workflowExecutionRetentionPeriod: msToTs('7 days'),
  }).catch((err: unknown) => {
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw unreachable(t, err);
  });
  // A new namespace is described at once (read from the database), but the calls that start
  // and describe runs accept it only once the server's namespace cache has refreshed (about 10 s
  // on the dev server): wait until a run lookup answers "no such run" rather than "no such namespace".
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await connection.workflowService.describeWorkflowExecution({
        namespace: t.namespace, execution: { workflowId: `doctor-agent-probe-${Date.now()}` },
      });
      return;
    } catch (err) {
      const message = String((err as Error).message ?? err);
      if (isNotFound(err) && !/namespace/i.test(message)) return;
      if (Date.now() > deadline) throw unreachable(t, err);
      await sleep(250);
    }
  }
}

/** Makes sure our search attributes exist in the namespace; returns false when they are missing and cannot be added. */
export async function ensureSearchAttributes(connection: Connection, namespace: string = NAMESPACE): Promise<boolean> {
  const has = async () => {
    const r = await connection.operatorService.listSearchAttributes({ namespace });
    const known = { ...(r.customAttributes ?? {}), ...(r.systemAttributes ?? {}) };
    return Object.keys(SEARCH_ATTRIBUTES).every((k) => k in known);
  };
  try {
    if (await has()) return true;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, 2 /* IndexedValueType KEYWORD */])),
    });
    return await has();
  } catch {
    return false;
  }
}
