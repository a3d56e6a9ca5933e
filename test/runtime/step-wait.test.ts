/**
 * `status` of a step whose worker went silent: what the server's pending-activity info says
 * about it (runtime/runs.ts stepWait), with fixed times.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepWait, type PendingStepInfo } from '../../runtime/runs.ts';

const t0 = new Date('2026-01-01T12:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const started: PendingStepInfo = { step: 'grpo', state: 'started', attempt: 1, maximumAttempts: 3, lastStarted: t0, lastHeartbeat: at(10) };

test('a step heartbeating is not waiting', () => {
  assert.equal(stepWait(started, at(12), { heartbeatMs: 120_000 }), undefined);
});

test('a silent step waits for its heartbeat timeout: how long is left, and what comes next', () => {
  const w = stepWait(started, at(40), { heartbeatMs: 120_000 });
  assert.ok(w);
  assert.equal(w.why, 'silent');
  assert.deepEqual(w.until, at(130));
  assert.equal(w.text, 'attempt 1: last heartbeat 30s ago (its worker may have died): it waits for its heartbeat timeout (2m00s), '
    + 'which runs out at 2026-01-01T12:02:10Z (in 1m30s); then attempt 2 of 3 starts');
  const last = stepWait({ ...started, attempt: 3 }, at(40), { heartbeatMs: 120_000 });
  assert.match(last!.text, /then the step fails \(no attempts left\)$/);
  assert.match(stepWait(started, at(200), { heartbeatMs: 120_000 })!.text, /ran out at 2026-01-01T12:02:10Z \(1m10s ago\): the server is about to time it out/);
});

test('the next attempt: its backoff, then a worker to take it', () => {
  const next: PendingStepInfo = { step: 'grpo', state: 'scheduled', attempt: 2, maximumAttempts: 3, nextAttempt: at(5), lastFailure: 'activity Heartbeat timeout' };
  assert.equal(stepWait(next, at(1))!.text, 'attempt 2 starts at 2026-01-01T12:00:05Z (in 4s) (attempt 1: activity Heartbeat timeout)');
  assert.equal(stepWait(next, at(20), { queue: 'gpu' })!.text, 'attempt 2 waits for a worker on queue gpu since 2026-01-01T12:00:05Z (15s ago) (attempt 1: activity Heartbeat timeout)');
});

test('status text: the waiting line shows even when no worker answers the progress query', async () => {
  const { formatRunView } = await import('../../cli/format/run-view.ts');
  const wait = stepWait(started, at(40), { heartbeatMs: 120_000 })!;
  const text = formatRunView({ id: 'r1', execution: 'RUNNING', startTime: t0, waits: [wait] });
  assert.match(text, /no worker answered the progress query/);
  assert.match(text, /\n {2}grpo {2}waiting: attempt 1: last heartbeat 30s ago \(its worker may have died\)/);
});
