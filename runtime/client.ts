/**
 * Connecting to Temporal: TEMPORAL_ADDRESS when set, otherwise the embedded dev
 * server of the artifact store (started on demand). Also registers the search
 * attributes the workflow sets, when the server lets us.
 */
import { Client, Connection } from '@temporalio/client';
import { ArtifactStore } from './store.ts';
import { NAMESPACE, SEARCH_ATTRIBUTES, serverPaths, startServer, type ServerInfo } from './temporal.ts';

export interface Temporal {
  client: Client;
  connection: Connection;
  address: string;
  /** The embedded server, when that is what we connected to. */
  server?: ServerInfo;
  /** Whether DoctorAgentPipeline / DoctorAgentStatus exist on the server. */
  searchAttributes: boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  store?: ArtifactStore;
  /** Connect here, whatever TEMPORAL_ADDRESS says. */
  address?: string;
  /** Print a line when the embedded server had to be started. */
  log?: (line: string) => void;
}

/** The address to use: TEMPORAL_ADDRESS, or the embedded server (started if needed). */
export async function resolveAddress(opts: ConnectOptions = {}): Promise<{ address: string; server?: ServerInfo }> {
  if (opts.address) return { address: opts.address };
  const env = process.env.TEMPORAL_ADDRESS?.trim();
  if (env) return { address: env };
  const store = opts.store ?? new ArtifactStore();
  const { info, started } = await startServer(serverPaths(store));
  if (started) opts.log?.(`Started the embedded Temporal server at ${info.address} (Web UI ${info.uiAddress})`);
  return { address: info.address, server: info };
}

export async function connectTemporal(opts: ConnectOptions = {}): Promise<Temporal> {
  const { address, server } = await resolveAddress(opts);
  const connection = await Connection.connect({ address, connectTimeout: 10_000 });
  const client = new Client({ connection, namespace: NAMESPACE });
  const searchAttributes = await ensureSearchAttributes(connection);
  return { client, connection, address, server, searchAttributes, close: () => connection.close() };
}

/** Makes sure our search attributes exist; returns false when they are missing and cannot be added. */
export async function ensureSearchAttributes(connection: Connection): Promise<boolean> {
  const has = async () => {
    const r = await connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
    const known = { ...(r.customAttributes ?? {}), ...(r.systemAttributes ?? {}) };
    return Object.keys(SEARCH_ATTRIBUTES).every((k) => k in known);
  };
  try {
    if (await has()) return true;
    await connection.operatorService.addSearchAttributes({
      namespace: NAMESPACE,
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, 2 /* IndexedValueType KEYWORD */])),
    });
    return await has();
  } catch {
    return false;
  }
}
