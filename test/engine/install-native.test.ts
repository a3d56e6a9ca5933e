import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// scripts/install-native.mjs runs in npm's postinstall: whatever is missing, it prints one line
// saying why the engine will use wasm, and the install goes on. These cases stop before anything
// is downloaded or compiled, except the last, which only checks that an existing build is reused.
const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'scripts', 'install-native.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'da-install-native-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

type Native = {
  findNodeHeaders(env: Record<string, string | undefined>, execPath: string): string | undefined;
  checkPrerequisites(env: Record<string, string | undefined>, platform?: string): { missing?: string };
  isBuilt(dir: string, tfjs: string): boolean;
};
const native = (await import(pathToFileURL(script).href)) as Native;

function install(env: Record<string, string>): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, lines: `${r.stdout}${r.stderr}`.split('\n').filter(Boolean) };
}

test('DOCTOR_AGENT_NATIVE=0 skips the build with one line and writes nothing', () => {
  const dir = join(scratch, 'skipped');
  const r = install({ DOCTOR_AGENT_NATIVE: '0', DOCTOR_AGENT_NATIVE_DIR: dir });
  assert.equal(r.status, 0);
  assert.deepEqual(r.lines, ['[doctor-agent] DOCTOR_AGENT_NATIVE=0: not building the native TensorFlow backend; the engine will use wasm.']);
  assert.equal(existsSync(dir), false);
});

test('a missing Python or compiler: one line that says what and that the engine will use wasm; the install succeeds', () => {
  const dir = join(scratch, 'missing');
  const noPython = install({ DOCTOR_AGENT_NATIVE_DIR: dir, PYTHON: '/nonexistent/python3' });
  assert.equal(noPython.status, 0);
  assert.equal(noPython.lines.length, 1, noPython.lines.join('\n'));
  assert.match(noPython.lines[0], /Native TensorFlow backend not built: no Python found \(PYTHON=\/nonexistent\/python3\).*; the engine will use wasm/);
  const noCompiler = install({ DOCTOR_AGENT_NATIVE_DIR: dir, CXX: '/nonexistent/g++' });
  assert.equal(noCompiler.status, 0);
  assert.equal(noCompiler.lines.length, 1, noCompiler.lines.join('\n'));
  // Where this machine has no pip, that is reported first; either way the line names the cause.
  assert.match(noCompiler.lines[0], /not built: (no C\+\+ compiler found \(CXX=\/nonexistent\/g\+\+\)|.*pip).*; the engine will use wasm/);
  assert.equal(existsSync(dir), false);
});

test('the build is for Linux x64; elsewhere the reason is the platform', () => {
  assert.match(native.checkPrerequisites({}, 'darwin-arm64').missing ?? '', /Linux x64 only, this is darwin-arm64/);
});

test("Node's headers are found offline: NODE_DIR, then the folder above Node's binary, then node-gyp's cache", () => {
  const fake = join(scratch, 'nodedir');
  mkdirSync(join(fake, 'include', 'node'), { recursive: true });
  writeFileSync(join(fake, 'include', 'node', 'node_api.h'), '');
  assert.equal(native.findNodeHeaders({ XDG_CACHE_HOME: scratch }, join(scratch, 'nowhere', 'bin', 'node')), undefined,
    'node_api.h without common.gypi is not a header folder node-gyp can use');
  writeFileSync(join(fake, 'include', 'node', 'common.gypi'), '{}');
  assert.equal(native.findNodeHeaders({ NODE_DIR: fake, XDG_CACHE_HOME: scratch }, join(scratch, 'nowhere', 'bin', 'node')), fake);
  assert.equal(native.findNodeHeaders({ XDG_CACHE_HOME: scratch }, join(fake, 'bin', 'node')), fake);
  // node-gyp's cache holds <version>/include/node
  const cache = join(scratch, 'node-gyp', process.version.slice(1));
  cpSync(fake, cache, { recursive: true });
  assert.equal(native.findNodeHeaders({ XDG_CACHE_HOME: scratch }, join(scratch, 'nowhere', 'bin', 'node')), cache);
});

test('a folder without a finished build, or one for another tfjs version, is not reused', () => {
  const dir = join(scratch, 'partial');
  mkdirSync(dir, { recursive: true });
  assert.equal(native.isBuilt(dir, '4.22.0'), false);
  writeFileSync(join(dir, 'built.json'), JSON.stringify({ tensorflow: '2.18.0', tfjsNode: '4.21.0' }));
  assert.equal(native.isBuilt(dir, '4.22.0'), false);
});

const built = join(root, '.tools', 'tfjs-node');
test('an existing build is reused without downloading or compiling again', { skip: !existsSync(join(built, 'built.json')) && 'no native build in .tools/tfjs-node' }, () => {
  const before = readdirSync(built).sort();
  const r = install({ DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(r.status, 0);
  assert.equal(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0], /Native TensorFlow backend \(tfjs-node [\d.]+, TensorFlow [\d.]+\) already built in .*; the engine will use it\./);
  assert.deepEqual(readdirSync(built).sort(), before);
});

test('no network: the download fails, one line says so, and nothing half-built is left', { skip: native.checkPrerequisites(process.env).missing }, () => {
  const dir = join(scratch, 'offline');
  const links = join(scratch, 'no-wheels');
  mkdirSync(links, { recursive: true });
  // pip told to use no index and an empty folder of wheels stands in for a machine without network.
  const r = install({ DOCTOR_AGENT_NATIVE_DIR: dir, PIP_NO_INDEX: '1', PIP_FIND_LINKS: links });
  assert.equal(r.status, 0);
  assert.equal(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0], /Native TensorFlow backend not built: downloading tensorflow-cpu from PyPI failed \(.+\); the engine will use wasm \(slower training\)\. Log: .*build\.log/);
  assert.equal(existsSync(join(dir, 'built.json')), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('pkg')), []);
});
