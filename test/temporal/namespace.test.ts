/**
 * A non-default namespace end to end, on a real dev server started with an extra
 * namespace: the CLI (client and in-process worker) reading a temporal.toml profile,
 * `doctor-agent worker` and `start` reading TEMPORAL_NAMESPACE and --namespace, a
 * schedule firing there; every run is found in that namespace and not in "default".
 * Then the errors: a namespace the server lacks, and an address nobody answers, each a
 * single line naming the address, the namespace and where they came from. Last, with no
 * address configured, the embedded server is started and gets the namespace created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { execa } from 'execa';
import { ArtifactStore } from '../../runtime/store.ts';
import { freePort, PROJECT_ROOT, readServerInfo, serverPaths, stopServer } from '../../runtime/temporal.ts';
import { startTestServer, waitFor } from './helpers.ts';

const NS = 'research';

const QUICK = `
name: ns-quick
steps:
  - id: hello
    uses: command
    with:
      run: [node, -e, "console.log('hello from the namespace')"]
`;

test('runs, workers and schedules in a non-default namespace; errors name address, namespace and origin', async (t) => {
  const s = await startTestServer(t, { namespaces: [NS] });
  const research = new Client({ connection: s.connection, namespace: NS });
  const file = join(s.store.root, 'quick.yaml');
  writeFileSync(file, QUICK);
  const toml = join(s.store.root, 'temporal.toml');
  writeFileSync(toml, `[profile.default]\naddress = "127.0.0.1:1"\n\n[profile.lab]\naddress = "${s.address}"\nnamespace = "${NS}"\n`);
  // Only what each call sets: no TEMPORAL_ADDRESS from the test's own environment, no user temporal.toml.
  const base = { DOCTOR_AGENT_HOME: s.store.root, PATH: process.env.PATH ?? '', TEMPORAL_CONFIG_FILE: toml };
  const cli = (env: Record<string, string>, ...args: string[]) =>
    execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), ...args], { env: { ...base, ...env }, extendEnv: false, reject: false });
  const inResearch = async (id: string) => (await research.workflow.getHandle(id).describe()).status.name;
  const notInDefault = async (id: string) =>
    assert.rejects(s.client.workflow.getHandle(id).describe(), WorkflowNotFoundError, `${id} is not in the default namespace`);

  // 1. `run` with a temporal.toml profile: the client and the in-process worker both use its namespace.
  const run = await cli({ TEMPORAL_PROFILE: 'lab' }, 'run', file);
  assert.equal(run.exitCode, 0, run.stderr);
  const id = /run (ns-quick-\S+) started/.exec(run.stderr)?.[1];
  assert.ok(id, run.stderr);
  assert.equal(await inResearch(id), 'COMPLETED');
  await notInDefault(id);
  const status = await cli({}, 'status', id, '--json', '--profile', 'lab');
  assert.equal(status.exitCode, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).execution, 'COMPLETED');

  // 2. `doctor-agent worker` on TEMPORAL_NAMESPACE; `start` and `list` told by --address/--namespace (over the default profile).
  const worker = execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), 'worker', '--queues', 'cpu'], {
    env: { ...base, TEMPORAL_ADDRESS: s.address, TEMPORAL_NAMESPACE: NS }, extendEnv: false, reject: false,
  });
  t.after(async () => {
    worker.kill('SIGTERM');
    await worker;
  });
  const started = await cli({}, 'start', '--pipeline', file, '--no-worker', '--address', s.address, '--namespace', NS);
  assert.equal(started.exitCode, 0, started.stderr);
  const id2 = started.stdout.trim();
  await waitFor(`${id2} to complete in ${NS}`, async () => (await inResearch(id2)) === 'COMPLETED' || undefined, 60_000);
  await notInDefault(id2);
  const list = await cli({ TEMPORAL_ADDRESS: s.address }, 'list', '--namespace', NS);
  assert.equal(list.exitCode, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${id2} `, 'm'));
  const listDefault = await cli({ TEMPORAL_ADDRESS: s.address }, 'list');
  assert.equal(listDefault.exitCode, 0, listDefault.stderr);
  assert.doesNotMatch(listDefault.stdout, new RegExp(id2));

  // 3. A schedule created in the namespace starts its runs there (served by the same worker).
  const nsEnv = { TEMPORAL_ADDRESS: s.address, TEMPORAL_NAMESPACE: NS };
  const created = await cli(nsEnv, 'schedule', 'create', 'ns-nightly', '--pipeline', file, '--cron', '0 2 * * *');
  assert.equal(created.exitCode, 0, created.stderr);
  const trig = await cli(nsEnv, 'schedule', 'trigger', 'ns-nightly');
  assert.equal(trig.exitCode, 0, trig.stderr);
  const scheduled = await waitFor('the scheduled run', async () => {
    const d = await research.schedule.getHandle('ns-nightly').describe();
    return d.info.recentActions[0]?.action.workflow.workflowId;
  });
  await waitFor(`${scheduled} to complete in ${NS}`, async () => (await inResearch(scheduled)) === 'COMPLETED' || undefined, 60_000);
  await notInDefault(scheduled);
  await assert.rejects(s.client.schedule.getHandle('ns-nightly').describe(), /not found/i);
  assert.equal((await cli(nsEnv, 'schedule', 'delete', 'ns-nightly')).exitCode, 0);

  // 4. A namespace the server lacks: one line, no stack trace.
  const missing = await cli({ TEMPORAL_ADDRESS: s.address }, 'list', '--namespace', 'nowhere');
  assert.equal(missing.exitCode, 1);
  assert.equal(missing.stderr.trim(),
    `error: no namespace "nowhere" at ${s.address}, namespace nowhere (address from TEMPORAL_ADDRESS, namespace from --namespace); create it (\`temporal operator namespace create\`) or choose another`);

  // 5. Nobody at the address (the default profile's): the command and the worker say so in one line.
  const gone = await cli({ TEMPORAL_NAMESPACE: NS }, 'list');
  assert.equal(gone.exitCode, 1);
  assert.match(gone.stderr, new RegExp(`^error: cannot reach Temporal at 127\\.0\\.0\\.1:1, namespace ${NS} \\(address from profile "default" in ${toml.replace(/[.]/g, '\\.')}, namespace from TEMPORAL_NAMESPACE\\): .+$`));
  const port = await freePort();
  const goneWorker = await cli({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` }, 'worker', '--queues', 'cpu');
  assert.equal(goneWorker.exitCode, 1);
  assert.match(goneWorker.stderr, new RegExp(`^error: cannot reach Temporal at 127\\.0\\.0\\.1:${port}, namespace default \\(address from TEMPORAL_ADDRESS, namespace from the default\\): .+$`));
});

test('no address configured: the embedded server, with TEMPORAL_NAMESPACE created on it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'doctor-agent-embedded-ns-'));
  const store = new ArtifactStore(root);
  t.after(async () => {
    await stopServer(serverPaths(store));
    rmSync(root, { recursive: true, force: true });
  });
  const file = join(root, 'quick.yaml');
  writeFileSync(file, QUICK);
  const env = {
    DOCTOR_AGENT_HOME: root, PATH: process.env.PATH ?? '', DOCTOR_AGENT_SERVER_OWNER_PID: String(process.pid),
    TEMPORAL_CONFIG_FILE: join(root, 'temporal.toml'), TEMPORAL_NAMESPACE: 'embedded-lab',
  };
  writeFileSync(env.TEMPORAL_CONFIG_FILE, '# no profile: no address\n');
  const run = await execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), 'run', file], { env, extendEnv: false, reject: false });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.match(run.stderr, /Started the embedded Temporal server/);
  const id = /run (ns-quick-\S+) started/.exec(run.stderr)?.[1];
  assert.ok(id, run.stderr);
  assert.match(run.stderr, /namespaces\/embedded-lab\/workflows\//);
  const info = readServerInfo(serverPaths(store));
  assert.ok(info);
  const connection = await Connection.connect({ address: info.address });
  t.after(() => connection.close());
  const d = await new Client({ connection, namespace: 'embedded-lab' }).workflow.getHandle(id).describe();
  assert.equal(d.status.name, 'COMPLETED');
});
