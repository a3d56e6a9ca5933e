/**
 * The CLI starts fast because declaring its commands loads no heavy package: Temporal
 * (client, worker), TensorFlow.js and vega load only inside the action that needs them.
 * Checked by what a child process loads (recorded by test/cli/fixtures/record-loads.mjs),
 * never by timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, type Option } from 'commander';
import { registrars } from '../../cli/commands/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const RECORDER = './test/cli/fixtures/record-loads.mjs';

/** Packages that must not load before an action runs. */
const HEAVY = [/^@temporalio\//, /^@tensorflow\//, /^vega$/, /^vega-lite$/];

/** The npm package a module URL belongs to, or undefined for a project file or a builtin. */
function packageOf(url: string): string | undefined {
  const at = url.lastIndexOf('/node_modules/');
  if (at < 0) return undefined;
  const parts = url.slice(at + '/node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

interface Loads {
  code: number | null;
  out: string;
  err: string;
  /** Every package loaded → the project file whose import first led to it ('?' when unknown). */
  packages: Map<string, string>;
}

/** Runs node with the recorder preloaded; returns what the process loaded. */
function loads(nodeArgs: string[]): Loads {
  const dir = mkdtempSync(join(tmpdir(), 'cli-startup-'));
  const record = join(dir, 'loads.txt');
  try {
    const r = spawnSync(process.execPath, ['--import', RECORDER, ...nodeArgs], {
      cwd: root, encoding: 'utf8', env: { ...process.env, LOAD_RECORD: record },
    });
    const parent = new Map<string, string>();
    const loaded: string[] = [];
    for (const line of readFileSync(record, 'utf8').split('\n')) {
      const [what, url, from] = line.split(' ');
      if (what === 'load') loaded.push(url!);
      else if (what === 'from' && !parent.has(url!)) parent.set(url!, from!);
    }
    const packages = new Map<string, string>();
    for (const url of loaded) {
      const name = packageOf(url);
      if (!name || packages.has(name)) continue;
      let at: string | undefined = url;
      while (at && packageOf(at)) at = parent.get(at);
      packages.set(name, at ? at.replace(`file://${root}`, '') : '?');
    }
    return { code: r.status, out: r.stdout, err: r.stderr, packages };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function heavy(l: Loads): string[] {
  return [...l.packages].filter(([name]) => HEAVY.some((h) => h.test(name))).map(([name, by]) => `${name} (imported through ${by})`);
}

test('the recorder sees heavy packages when they do load (so the checks below can fail)', () => {
  const probe = loads(['--import', 'tsx', '-e',
    "await import('./cli/temporal.ts'); await import('./evaluation/report.ts'); await import('./engine/tf.ts'); await import('./worker.ts');"]);
  assert.equal(probe.code, 0, probe.err);
  for (const name of ['@temporalio/client', '@temporalio/worker', '@tensorflow/tfjs-core', 'vega']) {
    assert.ok(probe.packages.has(name), `${name} not recorded; got ${[...probe.packages.keys()].join(', ')}`);
  }
  assert.equal(probe.packages.get('@temporalio/client'), 'cli/temporal.ts');
});

test('declaring every command (cli/commands/index.ts) loads no Temporal, TensorFlow.js or vega', () => {
  const l = loads(['--import', 'tsx', '-e', "const { registrars } = await import('./cli/commands/index.ts'); console.log(registrars.length);"]);
  assert.equal(l.code, 0, l.err);
  assert.equal(Number(l.out.trim()), registrars.length);
  assert.ok(l.packages.has('commander'), 'the recorder saw the commands load');
  assert.deepEqual(heavy(l), []);
});

test('--help, validate and steps load none of them either, and still do their job', () => {
  const help = loads(['bin/doctor-agent.js', '--help']);
  assert.equal(help.code, 0, help.err);
  for (const c of ['validate', 'run', 'worker', 'schedule', 'eval', 'serve', 'kb']) assert.match(help.out, new RegExp(`\\n  ${c}\\b`));
  assert.deepEqual(heavy(help), []);

  const validate = loads(['bin/doctor-agent.js', 'validate', 'pipelines/huatuo.yaml']);
  assert.equal(validate.code, 0, validate.err);
  assert.match(validate.out, /pipelines\/huatuo\.yaml: ok \(huatuo, 6 steps\)/);
  assert.deepEqual(heavy(validate), []);

  const steps = loads(['bin/doctor-agent.js', 'steps']);
  assert.equal(steps.code, 0, steps.err);
  assert.match(steps.out, /^KIND +QUEUE/);
  assert.deepEqual(heavy(steps), []);
});

test('help defaults written in the CLI match the runtime constants they stand for', async () => {
  const { DEFAULT_QUEUES } = await import('../../worker.ts');
  const { OVERLAP } = await import('../../runtime/schedules.ts');
  const program = new Command('doctor-agent');
  for (const register of registrars) register(program);
  const find = (path: string[]): Command => path.reduce((c, name) => c.commands.find((x) => x.name() === name)!, program);
  const option = (cmd: Command, flag: string): Option => cmd.options.find((o) => o.long === flag)!;

  assert.equal(option(find(['worker']), '--queues').defaultValue, DEFAULT_QUEUES.join(','));
  const overlap = option(find(['schedule', 'create']), '--overlap');
  assert.equal(overlap.description, `when a run is due while the last one runs: ${Object.keys(OVERLAP).join(', ')}`);
  assert.ok(Object.hasOwn(OVERLAP, overlap.defaultValue as string));
});
