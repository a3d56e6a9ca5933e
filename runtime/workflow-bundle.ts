/**
 * The workflow bundle (webpack, slow: seconds). Built once per process and kept on
 * disk under node_modules/.cache/doctor-agent/, keyed by a hash of every source file
 * the bundle can include and the SDK version, so a restarted worker starts at once.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { writeFileAtomic } from '../common/fs.ts';
import { sha256 } from '../common/hash.ts';
import { PROJECT_ROOT } from './temporal.ts';

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

/** Folders whose TypeScript may end up in the bundle (workflow code and the pure modules it imports). */
const SOURCES = ['workflows', 'dsl', 'common', 'activities', 'contract'];

function tsFiles(path: string): string[] {
  if (!existsSync(path)) return [];
  if (statSync(path).isFile()) return [path];
  return readdirSync(path).sort().flatMap((n) => {
    const p = join(path, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function sourceHash(): string {
  const parts: string[] = [];
  for (const s of SOURCES) for (const f of tsFiles(join(PROJECT_ROOT, s))) parts.push(f, sha256(readFileSync(f)));
  const sdk = join(PROJECT_ROOT, 'node_modules', '@temporalio', 'workflow', 'package.json');
  parts.push(existsSync(sdk) ? readFileSync(sdk, 'utf8') : '');
  return sha256(parts.join('\n')).slice(0, 16);
}

let cached: Promise<{ code: string }> | undefined;

/** The bundle for this process: from the disk cache when the sources are unchanged, else built and saved. */
export function workflowBundle(): Promise<{ code: string }> {
  cached ??= (async () => {
    const file = join(PROJECT_ROOT, 'node_modules', '.cache', 'doctor-agent', `workflow-bundle-${sourceHash()}.js`);
    if (existsSync(file)) return { code: readFileSync(file, 'utf8') };
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
    try {
      writeFileAtomic(file, code);
    } catch {
      /* read-only install: just keep it in memory */
    }
    return { code };
  })();
  return cached;
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m), log: noop };
