/**
 * The process watchdog, with real processes: one watchdog serves every job of a
 * supervising process; when that process is killed with SIGKILL, every job it still
 * supervises dies, and a job it has finished with is left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../runtime/supervisor.ts';
import { alive, tempDir, waitFor } from '../fixtures/jobs/util.ts';

const node = process.execPath;

/**
 * A stand-in for a worker: runs one quick command step to completion, then `jobs`
 * sleeping command steps at once, all in one process. It also arms the watchdog by hand
 * for two detached `sleep` processes and disarms the first (what the supervisor does when
 * it is done with a job). Prints WATCHDOG, JOBPID of each sleeper, KEPT and GUARDED.
 */
function supervisorScript(root: string, jobs: number): string {
  const sup = pathToFileURL(join(PROJECT_ROOT, 'runtime', 'supervisor.ts')).href;
  const wd = pathToFileURL(join(PROJECT_ROOT, 'runtime', 'watchdog.ts')).href;
  return `
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { superviseJob } from ${JSON.stringify(sup)};
import { processWatchdog } from ${JSON.stringify(wd)};
const root = ${JSON.stringify(root)};
const sleeper = "console.log(JSON.stringify({ type: 'progress', current: 0 })); setInterval(() => {}, 1000);";
// A quick job first: finished and disarmed before the others start.
const quickDir = join(root, 'quick'); mkdirSync(quickDir);
await superviseJob({ kind: 'command', runId: 'r', stepId: 'quick', attempt: 1, params: { run: ['true'] }, outDir: quickDir });
const watchdog = processWatchdog();
console.log('WATCHDOG ' + watchdog.pid);
const { spawn } = await import('node:child_process');
const kept = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
const guarded = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
watchdog.arm(kept.pid); watchdog.arm(guarded.pid); watchdog.disarm(kept.pid);
console.log('KEPT ' + kept.pid); console.log('GUARDED ' + guarded.pid);
for (let i = 0; i < ${jobs}; i++) {
  const outDir = join(root, 'job' + i); mkdirSync(outDir);
  let told = false;
  void superviseJob({
    kind: 'command', runId: 'r', stepId: 'job' + i, attempt: 1, params: { run: [process.execPath, '-e', sleeper] }, outDir,
    onState: (s) => { if (!told && s.pid) { told = true; console.log('JOBPID ' + s.pid); } },
  });
}
`;
}

test('one watchdog for all jobs of a process; SIGKILL of the supervisor kills every job it runs', async (t) => {
  const root = tempDir();
  const file = join(root, 'supervise-many.mts');
  writeFileSync(file, supervisorScript(root, 2));
  const sup = spawn(node, ['--import', 'tsx', file], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const jobPids: number[] = [];
  let watchdogPid = 0;
  let keptPid = 0;
  let guardedPid = 0;
  await new Promise<void>((res, rej) => {
    const rl = createInterface({ input: sup.stdout! });
    rl.on('line', (l) => {
      const m = /^(JOBPID|WATCHDOG|KEPT|GUARDED) (\d+)/.exec(l);
      if (m?.[1] === 'WATCHDOG') watchdogPid = Number(m[2]);
      if (m?.[1] === 'KEPT') keptPid = Number(m[2]);
      if (m?.[1] === 'GUARDED') guardedPid = Number(m[2]);
      if (m?.[1] === 'JOBPID') jobPids.push(Number(m[2]));
      if (jobPids.length === 2) res();
    });
    sup.once('exit', (code) => rej(new Error(`supervisor exited early (${code})`)));
  });
  assert.ok(watchdogPid > 0 && keptPid > 0 && guardedPid > 0, 'the supervisor printed no watchdog, kept or guarded pid');
  t.after(() => { for (const pid of [keptPid, guardedPid]) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  assert.notEqual(jobPids[0], jobPids[1]);
  for (const pid of jobPids) assert.ok(alive(pid), `job ${pid} not running`);
  assert.ok(alive(watchdogPid), 'the watchdog of the first job is gone: it must serve the later ones too');

  // Exactly one /bin/sh watchdog child for three jobs.
  const children = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(sup.pid)], { encoding: 'utf8' })
    .trim().split('\n').map((l) => l.trim().split(/\s+/));
  const shells = children.filter(([, comm]) => comm === 'sh' || comm === 'dash');
  assert.deepEqual(shells.map(([pid]) => Number(pid)), [watchdogPid], `children: ${JSON.stringify(children)}`);

  sup.kill('SIGKILL');
  for (const pid of jobPids) assert.ok(await waitFor(() => !alive(pid), 5000), `job ${pid} outlived its supervisor`);
  assert.ok(await waitFor(() => !alive(guardedPid), 5000), `armed group ${guardedPid} outlived its supervisor`);
  assert.ok(await waitFor(() => !alive(watchdogPid), 5000), 'the watchdog stayed after its work was done');
  assert.ok(alive(keptPid), 'a disarmed group was killed');
});

test('the watchdog keeps no process alive: a supervisor with nothing left to do exits, and its watchdog with it', async () => {
  const root = tempDir();
  const file = join(root, 'supervise-quick.mts');
  const sup = pathToFileURL(join(PROJECT_ROOT, 'runtime', 'supervisor.ts')).href;
  const wd = pathToFileURL(join(PROJECT_ROOT, 'runtime', 'watchdog.ts')).href;
  writeFileSync(file, `
import { superviseJob } from ${JSON.stringify(sup)};
import { processWatchdog } from ${JSON.stringify(wd)};
await superviseJob({ kind: 'command', runId: 'r', stepId: 'quick', attempt: 1, params: { run: ['true'] }, outDir: ${JSON.stringify(root)} });
console.log('WATCHDOG ' + processWatchdog().pid);
`);
  const child = spawn(node, ['--import', 'tsx', file], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((res) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); res(-1); }, 20_000);
    child.once('exit', (c) => { clearTimeout(timer); res(c); });
  });
  assert.equal(code, 0, 'the supervising process did not exit on its own (killed after 20 s)');
  const watchdogPid = Number(/WATCHDOG (\d+)/.exec(out)?.[1]);
  assert.ok(watchdogPid > 0, `no watchdog pid in: ${out}`);
  assert.ok(await waitFor(() => !alive(watchdogPid), 5000), 'the watchdog outlived the process it guards');
});
