/**
 * Every user error on the command line is one message (what, where, what to do) on stderr,
 * without a stack trace, and a non-zero exit. The real CLI in a child process; the artifact
 * store is a temporary folder and TEMPORAL_ADDRESS points at a port nothing listens on, so
 * no command starts the embedded Temporal server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModel } from '../evaluation/tiny-model.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/doctor-agent.js');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');

/** A TCP port on 127.0.0.1 that nothing listens on (taken, then given back). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const base = mkdtempSync(join(tmpdir(), 'cli-errors-'));
const home = join(base, 'store');
const temporalPort = await freePort();

/** Runs the CLI; killed after 60 s so that a command that does not refuse cannot hang the suite. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: base,
      env: { ...process.env, DOCTOR_AGENT_HOME: home, TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The command failed with exit code 1 and an `error:` message (or, for a pipeline, the
 * compiler's FILE:LINE:COL list ending in "N error(s)") matching `message`, and no stack trace.
 */
async function refuses(args: string[], message: RegExp): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 1, `${args.join(' ')}: exit code\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^ {4}at /m, `${args.join(' ')}: a stack trace\n${r.stderr}`);
  assert.match(r.stderr, /^error: |^\d+ errors?$/m, r.stderr);
  assert.match(r.stderr, message, r.stderr);
  return r.stderr;
}

test('logs: a run or step id that is a path is refused, and nothing outside the store is read', async () => {
  // A step log beside the store, where "../outside" would lead.
  mkdirSync(join(home, 'outside', 'steps', 'x'), { recursive: true });
  writeFileSync(join(home, 'outside', 'steps', 'x', 'step.log'), 'SECRET LINE\n');
  writeFileSync(join(home, 'outside', 'plan.json'), JSON.stringify({ steps: [{ id: 'x' }] }));
  mkdirSync(join(home, 'runs', 'r1'), { recursive: true });
  for (const id of ['../..', '../outside', '..', 'a/b', 'a\\b']) {
    const err = await refuses(['logs', id, '--step', 'x'], /invalid run id .*no '\/' or '\\', not '\.' or '\.\.'/);
    assert.ok(!err.includes('SECRET'));
  }
  await refuses(['logs', 'r1', '--step', '../../outside/steps/x'], /^error: invalid step id "\.\.\/\.\.\/outside\/steps\/x": use letters/m);
  await refuses(['logs', 'no-such-run'], /^error: no run "no-such-run" in the artifact store .*DOCTOR_AGENT_HOME/m);
});

test('eval: bad arguments, files and an unreachable server', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/v1`;
  const out = join(base, 'eval-out');
  await refuses(['eval', '--data', SAMPLE, '--base-url', 'localhost:3000', '--model-name', 'm'], /--base-url: "localhost:3000" is not an http:\/\/ or https:\/\/ URL: give .* e\.g\. http:\/\/127\.0\.0\.1:30000\/v1/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', `${url}/chat/completions`, '--model-name', 'm'], new RegExp(`ends with /chat/completions: give the part before it, e\\.g\\. ${url}$`, 'm'));
  await refuses(['eval', '--data', SAMPLE, '--base-url', url], /--base-url needs --model-name/);
  await refuses(['eval', '--data', join(base, 'nope.json'), '--base-url', url, '--model-name', 'm'], /nope\.json: evaluation file not found \(--data\)/);
  await refuses(['eval', '--data', base, '--base-url', url, '--model-name', 'm'], /a folder, not an evaluation file/);
  const notJson = join(base, 'broken.json');
  writeFileSync(notJson, '{"MedQA": [\n');
  await refuses(['eval', '--data', notJson, '--base-url', url, '--model-name', 'm'], /broken\.json(:\d+:\d+)?: invalid JSON .*\n {2}a \.json file must hold one JSON value/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--out', SAMPLE], /eval-format-sample\.json: exists and is not a folder \(--out\)/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--history', SAMPLE], /--history: .*eval-format-sample\.json: not an evaluation report/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--policy', 'middle'], /--policy: expected "max", "last" or "first", got "middle"/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--limit', 'two'], /option '--limit <n>' argument 'two' is invalid/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--top-p', '0'], /option '--top-p <p>' argument '0' is invalid\. expected a number > 0 and <= 1, got "0"/);
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--temperature', '-1'], /option '--temperature <t>' argument '-1' is invalid\. expected a number >= 0 and <= 2, got "-1"/);
  // A model folder whose config.json is broken.
  const model = join(base, 'bad-model');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), '{');
  await refuses(['eval', '--data', SAMPLE, '--model', model], /bad-model: cannot load the checkpoint: .*config\.json:\d+:\d+: invalid JSON/);
  // Nothing listens: the run stops after the retries, keeping what it wrote.
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--api', 'chat', '--retries', '1', '--out', out],
    new RegExp(`evaluation stopped: the server at http://127\\.0\\.0\\.1:${port}/v1 kept failing after 1 retries \\(network error: fetch failed \\(ECONNREFUSED\\)\\): check that it is running and that the base URL is right\\. 30 of 30 item\\(s\\) have no result yet; .*run again to ask only the missing ones`));
  // A results file damaged before its last line: where, and what to do.
  writeFileSync(join(out, 'results.jsonl'), 'garbage\n{"also": "garbage"}\n');
  await refuses(['eval', '--data', SAMPLE, '--base-url', url, '--model-name', 'm', '--api', 'chat', '--out', out], /results\.jsonl:1: not a result row .*delete the line or the file/);
});

test('other commands: a missing file, a bad flag value, a path where a folder is needed', async () => {
  await refuses(['validate', join(base, 'nope.yaml')], /nope\.yaml: file not found/);
  await refuses(['compile', join(ROOT, 'pipelines/huatuo-tiny.yaml'), '--set', 'nosuch=1'], /--set: unknown param 'nosuch'/);
  await refuses(['compile', join(ROOT, 'pipelines/huatuo-tiny.yaml'), '--params', join(base, 'nope.json')], /nope\.json: params file not found/);
  await refuses(['kb', 'generate', '--out', SAMPLE], /eval-format-sample\.json: exists and is not a folder \(--out\)/);
  await refuses(['kb', 'generate', '--out', join(SAMPLE, 'x'), '--train-size', '1', '--eval-size', '1'], /eval-format-sample\.json\/x\/?[^:]*: a part of the path is a file, not a folder \(mkdir failed with ENOTDIR\)/);
  await refuses(['kb', 'generate', '--out', join(base, 'kb'), '--seed', '-1'], /option '--seed <n>' argument '-1' is invalid/);
  await refuses(['tokenizer', 'train', '--data', join(base, 'nope.txt'), '--vocab-size', '300', '--out', join(base, 'tok')], /nope\.txt: file not found/);
  await refuses(['serve', '--model', join(base, 'nope')], /nope: not a model folder \(no config\.json\)/);
  // A port that is taken.
  const model = await tinyModel(2);
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const { port } = taken.address() as AddressInfo;
    await refuses(['serve', '--model', model, '--port', String(port)], new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE: the port is taken\\): choose another --port`));
  } finally {
    await new Promise<void>((r) => taken.close(() => r()));
  }
  await refuses(['steps', 'no.such.kind'], /unknown step kind 'no\.such\.kind'/);
  await refuses(['worker', '--queues', ' , '], /--queues " , ": no queue name; give a comma-separated list/);
  await refuses(['schedule', 'create', '../nightly', '--pipeline', join(ROOT, 'pipelines/nightly-eval.yaml'), '--cron', '0 2 * * *'], /schedule name "\.\.\/nightly"/);
});
