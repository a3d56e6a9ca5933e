/**
 * The version of the code that produces a step's result, part of its step-cache key.
 *
 * A step is run by one of the runners its kind declares (runtime/runners.ts): `builtin` (the
 * kind's TypeScript job under jobs/main.ts), a `program` (an external program speaking the
 * protocol) or `command` (the program the step's `with` names, launched as runtime/command.ts
 * says). The code version of a step is the package version plus a content hash of the runner's
 * sources for the step's kind: for `builtin`, jobs/main.ts and the kind's declared job module
 * (for a kind the registry does not know, one found through DOCTOR_AGENT_JOBS_DIR) with every
 * file they import, transitively (packages excluded); for a `program`, the files its argv
 * names (TypeScript and JavaScript ones with their imports); for `command`,
 * runtime/command.ts and its imports. The import graph comes from esbuild's metafile
 * (bundling, nothing written).
 *
 * Per process, each entry's graph and each file's hash are kept with the file's size, mtime and
 * inode, and checked again (one stat a file) before every use: a source edited while the worker
 * runs changes the version of the next step, as the job (a fresh process) runs the edited code.
 * The git commit is recorded alongside, for information only: uncommitted edits count through
 * the content hash.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { readJsonFile } from '../common/fs.ts';
import { hashJson, sha256 } from '../common/hash.ts';
import { jobDirs } from '../jobs/modules.ts';
import { isProblem, resolveRunner } from './runners.ts';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface CodeVersion {
  /** The package version (package.json). */
  package: string;
  /** Content hash of every source file of the step's runner and kind (paths relative to the project). */
  sources: string;
  /** Each of those files (relative to the project root; absolute outside it) → first 16 hex digits of its sha256. */
  files: Record<string, string>;
  /** The project's git commit, when it is a git checkout (information only; not in the key). */
  commit?: string;
}

export interface CodeVersionOptions {
  /** The project whose sources are hashed (default: this one). */
  root?: string;
  /** Folders searched for job modules (default: <root>/jobs, then DOCTOR_AGENT_JOBS_DIR, read at each call). */
  jobDirs?: () => string[];
}

type Signature = string;

function signature(file: string): Signature | undefined {
  try {
    const st = statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export class CodeVersions {
  readonly root: string;
  private readonly dirs: () => string[];
  /** Entry file → the files it imports, transitively (itself included), with their signatures when read. */
  private readonly graphs = new Map<string, { files: string[]; sigs: (Signature | undefined)[] }>();
  private readonly building = new Map<string, Promise<void>>();
  private readonly hashes = new Map<string, { sig: Signature; hash: string }>();
  private pkg?: string;
  private commit?: string | null;

  constructor(opts: CodeVersionOptions = {}) {
    this.root = resolve(opts.root ?? PROJECT_ROOT);
    this.dirs = opts.jobDirs ?? (() => jobDirs(join(this.root, 'jobs')));
  }

  /** The files a runner starts from for a kind; undefined when a built-in kind has no job module. */
  entries(runner: string, kind: string): string[] | undefined {
    const r = resolveRunner(kind, runner, { root: this.root, jobDirs: this.dirs });
    if (isProblem(r)) {
      if (r.code === 'no-module') return undefined;
      throw new Error(`unknown runner "${runner}": ${r.problem}`);
    }
    if (r.type === 'builtin') return [join(this.root, 'jobs', 'main.ts'), r.module];
    if (r.type === 'command') return [join(this.root, 'runtime', 'command.ts')];
    return r.argv.filter((a) => isAbsolute(a) && existsSync(a));
  }

  /** The code version of a step of `kind` run by `runner`. */
  async get(runner: string, kind: string): Promise<CodeVersion> {
    const entries = this.entries(runner, kind);
    const base = { package: this.packageVersion(), ...(this.gitCommit() ? { commit: this.gitCommit() } : {}) };
    // No job module: the job fails saying so; the version still differs from any that had one.
    if (!entries) return { ...base, sources: hashJson({ missing: `${runner}:${kind}` }), files: {} };
    await this.ensureGraphs(entries.filter(bundleable));
    const all = new Set<string>();
    for (const e of entries) for (const f of this.graphs.get(e)?.files ?? [e]) all.add(f);
    const files: Record<string, string> = {};
    const full: [string, string][] = [];
    for (const f of [...all].sort()) {
      const name = this.displayName(f);
      const h = this.fileHash(f);
      full.push([name, h]);
      files[name] = h.slice(0, 16);
    }
    full.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return { ...base, sources: hashJson({ runner, files: full }), files };
  }

  /** Builds the import graphs of every job module and of the command runner at once (worker start). */
  async warm(): Promise<void> {
    const entries = [join(this.root, 'runtime', 'command.ts')];
    for (const dir of this.dirs()) {
      try {
        for (const name of readdirSync(dir)) if (name.endsWith('.ts')) entries.push(join(dir, name));
      } catch {
        /* a listed folder that is not there: nothing to warm */
      }
    }
    await this.ensureGraphs(entries.filter((e) => existsSync(e)));
  }

  private displayName(file: string): string {
    const rel = relative(this.root, file);
    return rel.startsWith('..') || isAbsolute(rel) ? file : rel.split('\\').join('/');
  }

  private fresh(entry: string): boolean {
    const g = this.graphs.get(entry);
    return !!g && g.files.every((f, i) => signature(f) === g.sigs[i]);
  }

  private async ensureGraphs(entries: string[]): Promise<void> {
    const stale = entries.filter((e) => !this.fresh(e) && !this.building.has(e));
    if (stale.length) {
      const job = this.buildGraphs(stale).finally(() => {
        for (const e of stale) this.building.delete(e);
      });
      for (const e of stale) this.building.set(e, job);
    }
    await Promise.all(entries.map((e) => this.building.get(e)));
  }

  private async buildGraphs(entries: string[]): Promise<void> {
    let meta;
    try {
      const r = await build({
        entryPoints: entries, bundle: true, write: false, metafile: true, packages: 'external',
        platform: 'node', format: 'esm', outdir: join(this.root, '.code-version'), outbase: this.root,
        absWorkingDir: this.root, logLevel: 'silent',
      });
      meta = r.metafile;
    } catch {
      // Sources that do not build (a syntax error mid-edit): the job will fail on them itself.
      // Only the entries themselves are hashed, and nothing is kept.
      for (const e of entries) this.graphs.delete(e);
      return;
    }
    for (const out of Object.values(meta.outputs)) {
      if (!out.entryPoint) continue;
      const entry = resolve(this.root, out.entryPoint);
      const files = Object.keys(out.inputs).map((p) => resolve(this.root, p)).filter((p) => existsSync(p));
      if (!files.includes(entry)) files.push(entry);
      files.sort();
      this.graphs.set(entry, { files, sigs: files.map(signature) });
    }
  }

  private fileHash(file: string): string {
    const sig = signature(file);
    if (sig === undefined) return 'missing';
    const known = this.hashes.get(file);
    if (known && known.sig === sig) return known.hash;
    const hash = sha256(readFileSync(file));
    this.hashes.set(file, { sig, hash });
    return hash;
  }

  private packageVersion(): string {
    if (this.pkg === undefined) {
      try {
        this.pkg = String(readJsonFile<{ version?: string }>(join(this.root, 'package.json')).version ?? 'unknown');
      } catch {
        this.pkg = 'unknown';
      }
    }
    return this.pkg;
  }

  private gitCommit(): string | undefined {
    if (this.commit === undefined) {
      try {
        this.commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: this.root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim() || null;
      } catch {
        this.commit = null;
      }
    }
    return this.commit ?? undefined;
  }
}

/** Files esbuild can follow the imports of; others (a Python script) are hashed alone. */
function bundleable(file: string): boolean {
  return /\.(ts|mts|cts|js|mjs|cjs)$/.test(file);
}

let shared: CodeVersions | undefined;

/** This process's code versions of this project (graphs and hashes kept between steps). */
export function codeVersions(): CodeVersions {
  return (shared ??= new CodeVersions());
}
