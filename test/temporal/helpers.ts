/**
 * Shared pieces of the Temporal tests: a real dev server in a temporary store on free
 * ports (stopped when the test file ends, and by a watchdog if the test process dies),
 * Plans built by hand, and in-process or child-process workers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { hashJson } from '../../common/hash.ts';
import { PLAN_FORMAT, type Plan, type PlanStep } from '../../dsl/plan.ts';
import { ensureSearchAttributes } from '../../runtime/client.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { freePort, PROJECT_ROOT, serverPaths, startServer, stopServer, type ServerInfo } from '../../runtime/temporal.ts';
import { createWorkerSet, type WorkerSet } from '../../worker.ts';

export const FIXTURES = join(PROJECT_ROOT, 'test', 'temporal', 'fixtures');

export interface TestServer {
  store: ArtifactStore;
  info: ServerInfo;
  address: string;
  client: Client;
  connection: Connection;
}

/** One dev server per test file, in a fresh temporary store. */
export async function startTestServer(t: { after: TestContext['after'] }, opts: { namespaces?: string[] } = {}): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'doctor-agent-test-'));
  const store = new ArtifactStore(root);
  const port = await freePort();
  const { info } = await startServer(serverPaths(store), { port, uiPort: await freePort(), ownerPid: process.pid, namespaces: opts.namespaces });
  const connection = await Connection.connect({ address: info.address });
  await ensureSearchAttributes(connection);
  const client = new Client({ connection });
  t.after(async () => {
    await connection.close().catch(() => {});
    await stopServer(serverPaths(store));
    rmSync(root, { recursive: true, force: true });
  });
  return { store, info, address: info.address, client, connection };
}

/** For code outside node:test (benchmarks, scripts): an `after` that collects cleanups, and close() that runs them, newest first. */
export function cleanupScope(): { after: (fn: () => Promise<void> | void) => void; close: () => Promise<void> } {
  const fns: (() => Promise<void> | void)[] = [];
  return {
    after: (fn) => void fns.push(fn),
    close: async () => {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

/** An in-process worker set, shut down when the test file ends. */
export async function startWorker(t: { after: TestContext['after'] }, s: TestServer, queues = ['cpu']): Promise<WorkerSet> {
  const set = await createWorkerSet({ address: s.address, store: s.store, queues });
  const running = set.run();
  t.after(async () => {
    set.shutdown();
    await running;
  });
  return set;
}

/** A worker in its own process (so it can be killed with SIGKILL). */
export function spawnWorker(s: TestServer, queues = 'cpu'): ResultPromise {
  return execa(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'worker.ts'), queues], {
    cwd: PROJECT_ROOT,
    env: { DOCTOR_AGENT_HOME: s.store.root, TEMPORAL_ADDRESS: s.address },
    reject: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export type StepInput = Pick<PlanStep, 'id'> & Partial<Omit<PlanStep, 'id' | 'hash'>>;

/** A Plan built by hand: command steps on queue `cpu` with quick retries unless told otherwise. */
export function makePlan(name: string, steps: StepInput[]): Plan {
  const full = steps.map((s, i): PlanStep => {
    const step: Omit<PlanStep, 'hash'> = {
      uses: 'command',
      needs: [],
      with: {},
      retry: { maximumAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 1000 },
      timeouts: { stepMs: 120_000, attemptMs: 60_000, heartbeatMs: 10_000 },
      queue: 'cpu',
      cache: false,
      outputs: [],
      source: { file: `${name}.yaml`, line: i + 1, col: 3 },
      ...s,
    };
    return { ...step, hash: hashJson(step) };
  });
  const plan: Omit<Plan, 'hash'> = {
    format: PLAN_FORMAT, name, description: '', sources: [`${name}.yaml`], params: {}, steps: full,
  };
  return { ...plan, hash: hashJson(plan) };
}

/**
 * Pipeline text of two command steps: `write` writes param `greeting` (default hello) to its
 * output `text` (out.txt), and `read`, after it, prints "read: " and that file's content.
 */
export function writeReadPipeline(name: string): string {
  return `
name: ${name}
params:
  greeting: { type: string, default: hello }
steps:
  - id: write
    uses: command
    with:
      run: [node, -e, "require('fs').writeFileSync('out.txt', process.argv[1])", "\${{ params.greeting }}"]
      outputs: { text: out.txt }
  - id: read
    uses: command
    needs: [write]
    with:
      run: [node, -e, "console.log('read:', require('fs').readFileSync(process.argv[1], 'utf8'))", "\${{ steps.write.outputs.text }}"]
`;
}

/** Runs `bin/doctor-agent.js ARGS` against the test server's store and address; never throws on a failing exit. */
export function cliFor(s: TestServer) {
  const env = { DOCTOR_AGENT_HOME: s.store.root, TEMPORAL_ADDRESS: s.address };
  return (...args: string[]) => execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), ...args], { env, reject: false });
}

/** argv of a node one-liner. */
export const nodeEval = (code: string): string[] => [process.execPath, '-e', code];

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
