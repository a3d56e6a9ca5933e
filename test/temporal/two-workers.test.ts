/**
 * Workers on several machines, in miniature: two `doctor-agent worker` processes on a real dev
 * server, one serving the workflow queue and `cpu`, the other only `gpu` (--no-workflows), each
 * in its own working folder and with its own DOCTOR_AGENT_TEST_WORKER, sharing nothing but
 * TEMPORAL_ADDRESS and DOCTOR_AGENT_HOME (the artifact store). Each step of the pipeline runs on
 * the worker of its `queue:` and reads the previous step's output from the shared store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../runtime/temporal.ts';
import { cliFor, startTestServer, waitFor, type TestServer } from './helpers.ts';

/** Each step writes who.json: the worker's label (inherited environment), its pid (the job's parent) and what it read. */
const WHO = (read: string) =>
  `const fs=require('fs');const r=${read};fs.writeFileSync('who.json',JSON.stringify({worker:process.env.DOCTOR_AGENT_TEST_WORKER,pid:process.ppid,read:r}))`;

const PIPELINE = `
name: two-workers
defaults:
  queue: cpu
  cache: false
steps:
  - id: prep
    uses: command
    with:
      run: [node, -e, "${WHO('null')}"]
      outputs: { who: who.json }
  - id: train
    uses: command
    needs: [prep]
    queue: gpu
    with:
      run: [node, -e, "${WHO("JSON.parse(fs.readFileSync(process.argv[1],'utf8'))")}", "\${{ steps.prep.outputs.who }}"]
      outputs: { who: who.json }
  - id: report
    uses: command
    needs: [train]
    with:
      run: [node, -e, "${WHO("JSON.parse(fs.readFileSync(process.argv[1],'utf8'))")}", "\${{ steps.train.outputs.who }}"]
      outputs: { who: who.json }
`;

/** `doctor-agent worker ARGS` in a folder of its own; resolves with its pid and task queues once it polls. */
async function worker(t: { after: (fn: () => Promise<void>) => void }, s: TestServer, label: string, args: string[]): Promise<{ pid: number; queues: string[] }> {
  const cwd = mkdtempSync(join(tmpdir(), `doctor-agent-${label}-`));
  const child = execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), 'worker', ...args], {
    cwd,
    env: { DOCTOR_AGENT_HOME: s.store.root, TEMPORAL_ADDRESS: s.address, DOCTOR_AGENT_TEST_WORKER: label },
    reject: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => void (out += d.toString()));
  t.after(async () => {
    child.kill('SIGTERM');
    const r = await child;
    rmSync(cwd, { recursive: true, force: true });
    assert.equal(r.exitCode, 0, `${label} worker: ${out}`);
  });
  return waitFor(`the ${label} worker to poll`, () => {
    if (child.exitCode !== null) throw new Error(`${label} worker exited: ${out}`);
    const m = /^worker (\d+) on .*: (.*) \(store /m.exec(out);
    return m ? { pid: Number(m[1]), queues: m[2]!.split(', ') } : undefined;
  }, 30_000);
}

test('a cpu worker and a gpu worker in separate processes share one artifact store', async (t) => {
  const s = await startTestServer(t);
  const [cpu, gpu] = await Promise.all([
    worker(t, s, 'cpu', ['--queues', 'cpu']),
    worker(t, s, 'gpu', ['--queues', 'gpu', '--no-workflows']),
  ]);
  assert.deepEqual(cpu.queues, ['doctor-agent', 'cpu']);
  assert.deepEqual(gpu.queues, ['gpu']);
  const [cpuPid, gpuPid] = [cpu.pid, gpu.pid];
  assert.notEqual(cpuPid, gpuPid);

  const file = join(s.store.root, 'two-workers.yaml');
  writeFileSync(file, PIPELINE);
  const started = await cliFor(s)('start', '--pipeline', file);
  assert.equal(started.exitCode, 0, started.stderr);
  const id = started.stdout.trim();
  const result = await s.client.workflow.getHandle(id).result();
  assert.equal(result.status, 'succeeded', JSON.stringify(result));

  const who = (step: string) => {
    const path = result.steps[step]!.outputs!.who as string;
    assert.ok(path.startsWith(join(s.store.root, 'runs', id, 'steps', step)), path);
    return JSON.parse(readFileSync(path, 'utf8')) as { worker: string; pid: number; read: unknown };
  };
  const prep = who('prep');
  const train = who('train');
  const report = who('report');
  assert.deepEqual({ worker: prep.worker, pid: prep.pid }, { worker: 'cpu', pid: cpuPid });
  assert.deepEqual({ worker: train.worker, pid: train.pid }, { worker: 'gpu', pid: gpuPid });
  assert.deepEqual({ worker: report.worker, pid: report.pid }, { worker: 'cpu', pid: cpuPid });
  // Each step read what the step before it wrote on the other worker, through the shared store.
  assert.deepEqual(train.read, prep);
  assert.deepEqual(report.read, train);
});
