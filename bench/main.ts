/**
 * Benchmarks: `npm run bench` runs every bench/<name>.ts, `npm run bench -- NAME...`
 * only those. A bench module exports `run(): Promise<object>`; its result is printed
 * and written to bench/results/<name>.json. Each bench runs in its own process.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeJsonAtomic } from '../common/fs.ts';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here).filter((f) => f.endsWith('.ts') && f !== 'main.ts').map((f) => f.slice(0, -3)).sort();
const names = process.argv.slice(2);

for (const n of names) {
  if (!all.includes(n)) {
    console.error(`no benchmark "${n}" (have: ${all.join(', ')})`);
    process.exit(1);
  }
}

if (names.length === 1) {
  const [name] = names;
  const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { run?: () => Promise<object> };
  if (typeof mod.run !== 'function') {
    console.error(`bench/${name}.ts exports no run() function`);
    process.exit(1);
  }
  const started = new Date().toISOString();
  const result = await mod.run();
  const out = { bench: name, started, finished: new Date().toISOString(), node: process.version, ...result };
  writeJsonAtomic(join(here, 'results', `${name}.json`), out);
  console.log(JSON.stringify(out, null, 2));
  process.exit(0);
} else {
  let failed = 0;
  for (const name of names.length ? names : all) {
    console.log(`== bench ${name}`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name], { stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}
