/**
 * Benchmarks: `npm run bench` runs every bench/<name>.ts, `npm run bench -- NAME...`
 * only those. A bench module exports `run(args): Promise<object>`; its result is printed
 * (then its `summary(result)`, if it exports one) and written to bench/results/<name>.json
 * (`--out FILE`: there instead). Each bench runs
 * in its own process. Options after the names go to the benches, e.g.
 * `npm run bench -- recipe --quick`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { engineProcessEnv } from '../common/engine-env.ts';
import { writeJsonAtomic } from '../common/fs.ts';

const here = dirname(fileURLToPath(import.meta.url));

// Benchmarks measure the engine as jobs run it: in a process started with the engine's
// environment (common/engine-env.ts), so this one starts again with it when it lacks it.
const missing = engineProcessEnv();
if (Object.keys(missing).length > 0) {
  const again = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, ...missing } });
  process.exit(again.status ?? 1);
}
const all = readdirSync(here).filter((f) => f.endsWith('.ts') && f !== 'main.ts').map((f) => f.slice(0, -3)).sort();
const argv = process.argv.slice(2);
const firstOption = argv.findIndex((a) => a.startsWith('-'));
const names = firstOption < 0 ? argv : argv.slice(0, firstOption);
const options = firstOption < 0 ? [] : argv.slice(firstOption);
const outAt = options.indexOf('--out');
const outFile = outAt >= 0 ? options[outAt + 1] : undefined;
if (outAt >= 0 && !outFile) {
  console.error('--out needs a file');
  process.exit(1);
}
const benchArgs = outAt >= 0 ? [...options.slice(0, outAt), ...options.slice(outAt + 2)] : options;

for (const n of names) {
  if (!all.includes(n)) {
    console.error(`no benchmark "${n}" (have: ${all.join(', ')})`);
    process.exit(1);
  }
}

if (names.length === 1) {
  const [name] = names;
  const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { run?: (args: string[]) => Promise<object>; summary?: (result: never) => string };
  if (typeof mod.run !== 'function') {
    console.error(`bench/${name}.ts exports no run() function`);
    process.exit(1);
  }
  const started = new Date().toISOString();
  const result = await mod.run(benchArgs);
  const out = { bench: name, started, finished: new Date().toISOString(), node: process.version, ...result };
  writeJsonAtomic(outFile ? resolve(outFile) : join(here, 'results', `${name}.json`), out);
  console.log(JSON.stringify(out, null, 2));
  if (typeof mod.summary === 'function') console.log(mod.summary(result as never));
  process.exit(0);
} else {
  let failed = 0;
  for (const name of names.length ? names : all) {
    console.log(`== bench ${name}`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name, ...benchArgs], { stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}
