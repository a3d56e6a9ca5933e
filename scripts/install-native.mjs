#!/usr/bin/env node
// Builds the engine's native TensorFlow backend (@tensorflow/tfjs-node) into .tools/tfjs-node/
// when this machine can: the pinned `tensorflow-cpu` wheel from PyPI (pip, sha256-checked, kept
// in .tools/tfjs-node/wheels/) supplies libtensorflow and the C API headers; tfjs-node (the
// version of the project's @tensorflow/tfjs-core) is installed without its install script (which
// downloads from Google storage) and its addon is compiled by node-gyp against Node's own headers.
// Its @tensorflow/tfjs-core and tfjs-backend-cpu are links to the project's, so the engine has one
// tfjs-core. Runs after the Temporal CLI in `postinstall`; never fails the install: when something
// is missing it prints one line saying why and that the engine will use wasm.
// DOCTOR_AGENT_NATIVE=0 skips it; DOCTOR_AGENT_NATIVE_DIR builds elsewhere (engine/backend.ts
// reads the same variable).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync,
  writeFileSync, copyFileSync, lstatSync,
} from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, delimiter } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const TENSORFLOW_VERSION = '2.18.0';
/** The one wheel fetched: CPython 3.11 manylinux x86_64 (libtensorflow inside does not depend on the Python). */
export const WHEEL = {
  file: `tensorflow_cpu-${TENSORFLOW_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl`,
  sha256: '089e71746960ea581dca53401f84b3b99c8537313e337a9e5dbf97036a936f7e',
};
/** Packages tfjs-node depends on that the project already has: linked, so there is one instance. */
const SHARED = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'];
const TAG = '[doctor-agent]';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the build lives: DOCTOR_AGENT_NATIVE_DIR, else .tools/tfjs-node. */
export function nativeDir(env = process.env) {
  return env.DOCTOR_AGENT_NATIVE_DIR || join(root, '.tools', 'tfjs-node');
}

/** The first of `names` found on PATH (or given as a path), else undefined. */
function which(name, env) {
  if (!name) return undefined;
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const d of (env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

/**
 * The folder holding include/node (node_api.h and common.gypi), found as node-gyp would without
 * downloading: NODE_DIR, npm's nodedir setting, the folder above Node's binary (/usr for
 * /usr/bin/node), then node-gyp's header cache.
 */
export function findNodeHeaders(env = process.env, execPath = process.execPath) {
  const version = process.version.slice(1);
  const candidates = [
    env.NODE_DIR,
    env.npm_config_nodedir,
    join(dirname(execPath), '..'),
    env.npm_config_devdir && join(env.npm_config_devdir, version),
    join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-gyp', version),
  ].filter(Boolean);
  return candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')) && existsSync(join(d, 'include', 'node', 'common.gypi')));
}

/** node-gyp's entry script: npm's own (npm_config_node_gyp while npm runs this), else beside Node's npm. */
export function findNodeGyp(env = process.env, execPath = process.execPath) {
  const candidates = [
    env.npm_config_node_gyp,
    env.npm_execpath && join(dirname(env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  return candidates.find((p) => existsSync(p));
}

function findPython(env) {
  for (const p of env.PYTHON ? [env.PYTHON] : ['python3', 'python']) {
    const bin = which(p, env);
    if (!bin) continue;
    const r = spawnSync(bin, ['-m', 'pip', '--version'], { stdio: 'ignore', env });
    if (r.status === 0) return { bin };
    return { bin, noPip: true };
  }
  return undefined;
}

/**
 * What this machine lacks for the build, as one short phrase, or undefined when it has it all.
 * Also returns the tools found.
 */
export function checkPrerequisites(env = process.env, platform = `${process.platform}-${process.arch}`) {
  if (platform !== 'linux-x64') return { missing: `the native build supports Linux x64 only, this is ${platform}` };
  const python = findPython(env);
  if (!python) return { missing: `no Python found (${env.PYTHON ? `PYTHON=${env.PYTHON}` : 'python3'}); it fetches TensorFlow with pip` };
  if (python.noPip) return { missing: `${python.bin} has no pip` };
  const cxx = which(env.CXX || 'g++', env) ?? (env.CXX ? undefined : which('c++', env));
  if (!cxx) return { missing: `no C++ compiler found (${env.CXX ? `CXX=${env.CXX}` : 'g++'})` };
  if (!which('make', env)) return { missing: 'make was not found' };
  const headers = findNodeHeaders(env);
  if (!headers) return { missing: `Node's headers were not found (looked for include/node/node_api.h under NODE_DIR and ${join(dirname(process.execPath), '..')}; set NODE_DIR to the folder holding include/node)` };
  const gyp = findNodeGyp(env);
  if (!gyp) return { missing: 'node-gyp (bundled with npm) was not found' };
  return { python: python.bin, headers, gyp };
}

function tfjsCoreVersion() {
  const pkg = join(root, 'node_modules', '@tensorflow', 'tfjs-core', 'package.json');
  return existsSync(pkg) ? JSON.parse(readFileSync(pkg, 'utf8')).version : undefined;
}

/** What a finished build records; a build is reused only when all of it matches. */
function expectedMarker(tfjs) {
  return { tensorflow: TENSORFLOW_VERSION, wheelSha256: WHEEL.sha256, tfjsNode: tfjs, napi: 8 };
}

/** The addon's package folder inside a build directory. */
export function addonDir(dir) {
  return addonIn(join(dir, 'pkg'));
}

function addonIn(pkg) {
  return join(pkg, 'node_modules', '@tensorflow', 'tfjs-node');
}

/** True when dir holds a finished build for tfjs-core `tfjs` whose shared links still resolve. */
export function isBuilt(dir, tfjs) {
  try {
    const marker = JSON.parse(readFileSync(join(dir, 'built.json'), 'utf8'));
    const want = expectedMarker(tfjs);
    if (Object.keys(want).some((k) => marker[k] !== want[k])) return false;
    if (!existsSync(join(addonDir(dir), 'lib', 'napi-v8', 'tfjs_binding.node'))) return false;
    return SHARED.every((p) => realpathSync(join(dir, 'pkg', 'node_modules', p)) === realpathSync(join(root, 'node_modules', p)));
  } catch {
    return false;
  }
}

async function sha256(file) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

/** Runs a step, appending its output to the log; throws with the step's name and last output line. */
function step(name, log, bin, args, opts = {}) {
  writeFileSync(log, `\n$ ${bin} ${args.join(' ')}\n`, { flag: 'a' });
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}`, { flag: 'a' });
  if (r.status !== 0) {
    const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').map((l) => l.trim()).filter(Boolean);
    const why = lines.find((l) => /\berror\b/i.test(l) && !/^gyp ERR!/.test(l)) ?? lines.pop();
    throw new Error(`${name} failed${r.error ? ` (${r.error.message})` : why ? ` (${why.slice(0, 200)})` : ''}`);
  }
  return r.stdout;
}

/** The environment for nested npm/node-gyp runs, without the outer npm's project settings. */
function childEnv(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^npm_(config_(local_prefix|prefix|global|save|package_lock|ignore_scripts|omit|include|workspace)|package_|lifecycle_)/i.test(k)) continue;
    out[k] = v;
  }
  return out;
}

// Extracts libtensorflow and the headers the addon needs (the closure of the includes of the
// binding's sources and of tensorflow/c/**.h) from the wheel, streaming; argv: wheel, lib folder,
// include folder, the binding's source folder.
const EXTRACT_PY = `
import os, re, shutil, sys, zipfile
whl, lib, inc, src = sys.argv[1:5]
P = 'tensorflow/include/'
z = zipfile.ZipFile(whl)
names = set(z.namelist())
def put(name, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with z.open(name) as src, open(dest, 'wb') as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
for so in ('libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'):
    put('tensorflow/' + so, os.path.join(lib, so))
todo = [n[len(P):] for n in names if n.startswith(P + 'tensorflow/c/') and n.endswith('.h')]
for f in os.listdir(src):
    todo += re.findall(r'#include\\s+"([^"]+)"', open(os.path.join(src, f), encoding='utf-8', errors='replace').read())
seen = set()
while todo:
    h = todo.pop()
    if h in seen or P + h not in names:
        continue
    seen.add(h)
    todo += re.findall(r'#include\\s+"([^"]+)"', z.read(P + h).decode('utf-8', 'replace'))
for h in seen:
    put(P + h, os.path.join(inc, h))
print(len(seen))
`;

// Loads the built addon with the project's tfjs-core and checks one matMul on it.
const VERIFY_JS = `
const { createRequire } = require('node:module');
const [root, pkg] = process.argv.slice(1);
const core = createRequire(root + '/package.json')('@tensorflow/tfjs-core');
createRequire(pkg + '/package.json')('@tensorflow/tfjs-node');
core.setBackend('tensorflow').then((ok) => {
  const y = core.matMul(core.tensor2d([[1, 2], [3, 4]]), core.tensor2d([[5], [6]])).dataSync();
  if (!ok || core.getBackend() !== 'tensorflow' || y[0] !== 17 || y[1] !== 39) throw new Error('the tensorflow backend did not compute');
  console.log('ok');
});
`;

async function build(dir, tfjs, tools, env) {
  const log = join(dir, 'build.log');
  mkdirSync(join(dir, 'wheels'), { recursive: true });
  writeFileSync(log, `build of @tensorflow/tfjs-node ${tfjs} against tensorflow-cpu ${TENSORFLOW_VERSION}, ${new Date().toISOString()}\n`);
  const cenv = childEnv(env);

  // 1. The wheel (kept: a rebuild does not download again).
  const wheel = join(dir, 'wheels', WHEEL.file);
  if (!existsSync(wheel) || (await sha256(wheel)) !== WHEEL.sha256) {
    rmSync(wheel, { force: true });
    const req = join(dir, 'wheels', 'requirements.txt');
    writeFileSync(req, `tensorflow-cpu==${TENSORFLOW_VERSION} --hash=sha256:${WHEEL.sha256}\n`);
    step('downloading tensorflow-cpu from PyPI', log, tools.python, ['-m', 'pip', 'download', '--quiet', '--disable-pip-version-check',
      '--no-deps', '--only-binary=:all:', '--python-version', '3.11', '--platform', 'manylinux2014_x86_64',
      '--require-hashes', '-r', req, '-d', join(dir, 'wheels')], { env: cenv });
    if (!existsSync(wheel)) throw new Error(`pip did not save ${WHEEL.file}`);
  }

  // 2. tfjs-node and its JavaScript dependencies, without install scripts, in a fresh folder.
  const tmp = join(dir, 'pkg.tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'doctor-agent-tfjs-node', private: true, dependencies: { '@tensorflow/tfjs-node': tfjs } }, null, 2));
  const npm = env.npm_execpath && existsSync(env.npm_execpath) ? [process.execPath, [env.npm_execpath]] : ['npm', []];
  step('installing @tensorflow/tfjs-node from npm', log, npm[0], [...npm[1], 'install', '--prefix', tmp, '--ignore-scripts',
    '--no-audit', '--no-fund', '--no-package-lock', '--omit=dev', '--loglevel=error'], { cwd: tmp, env: cenv });

  // 3. One tfjs-core: the shared packages become links to the project's (same version required).
  for (const p of SHARED) {
    const ours = join(root, 'node_modules', p);
    const theirs = join(tmp, 'node_modules', p);
    const v = JSON.parse(readFileSync(join(ours, 'package.json'), 'utf8')).version;
    if (existsSync(theirs) && JSON.parse(readFileSync(join(theirs, 'package.json'), 'utf8')).version !== v) {
      throw new Error(`tfjs-node ${tfjs} wants another ${p} than the project's ${v}`);
    }
    rmSync(theirs, { recursive: true, force: true });
    symlinkSync(ours, theirs, 'dir');
  }
  const nested = findNested(join(tmp, 'node_modules'));
  if (nested.length) throw new Error(`tfjs-node brought its own copy of ${nested[0]}`);
  removeSourceMaps(join(tmp, 'node_modules'));

  // 4. libtensorflow and headers where tfjs-node's binding.gyp looks (deps/lib, deps/include).
  const addon = addonIn(tmp);
  const lib = join(addon, 'deps', 'lib');
  step('extracting libtensorflow from the wheel', log, tools.python, ['-c', EXTRACT_PY, wheel, lib, join(addon, 'deps', 'include'), join(addon, 'binding')], { env: cenv });
  for (const [link, to] of [['libtensorflow.so', 'libtensorflow_cc.so.2'], ['libtensorflow.so.2', 'libtensorflow_cc.so.2'], ['libtensorflow_framework.so', 'libtensorflow_framework.so.2']]) {
    symlinkSync(to, join(lib, link));
  }

  // 5. The addon, against Node's headers (offline: --nodedir).
  step('compiling the tfjs-node addon (node-gyp)', log, process.execPath, [tools.gyp, 'rebuild', `--nodedir=${tools.headers}`,
    `-j`, String(Math.max(1, availableParallelism())), '--module_name=tfjs_binding', '--module_path=lib/napi-v8', '--napi_build_version=8'],
  { cwd: addon, env: cenv });
  mkdirSync(join(addon, 'lib', 'napi-v8'), { recursive: true });
  const built = join(addon, 'build', 'Release', 'tfjs_binding.node');
  const placed = join(addon, 'lib', 'napi-v8', 'tfjs_binding.node');
  if (!existsSync(placed)) copyFileSync(built, placed);
  rmSync(join(addon, 'build'), { recursive: true, force: true });

  // 6. It loads and computes with the project's tfjs-core; then it replaces any previous build.
  step('checking the built backend', log, process.execPath, ['-e', VERIFY_JS, root, tmp], { env: cenv });
  rmSync(join(dir, 'built.json'), { force: true });
  rmSync(join(dir, 'pkg'), { recursive: true, force: true });
  renameSync(tmp, join(dir, 'pkg'));
  writeFileSync(join(dir, 'built.json'), JSON.stringify(expectedMarker(tfjs), null, 2) + '\n');
}

/** Deletes the *.map files (about 170 MB of tfjs's 250) below a folder, not following links. */
function removeSourceMaps(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) removeSourceMaps(full);
    else if (e.isFile() && e.name.endsWith('.map')) rmSync(full);
  }
}

/** Copies of the shared packages below node_modules other than the top-level links. */
function findNested(nm, depth = 0) {
  const found = [];
  if (depth > 6 || !existsSync(nm)) return found;
  for (const e of readdirSync(nm)) {
    const scoped = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => `${e}/${s}`) : [e];
    for (const p of scoped) {
      const full = join(nm, p);
      if (depth > 0 && SHARED.includes(p)) found.push(full);
      if (!lstatSync(full).isSymbolicLink()) found.push(...findNested(join(full, 'node_modules'), depth + 1));
    }
  }
  return found;
}

export async function main(env = process.env) {
  const say = (msg) => console.log(`${TAG} ${msg}`);
  if (env.DOCTOR_AGENT_NATIVE === '0') {
    say('DOCTOR_AGENT_NATIVE=0: not building the native TensorFlow backend; the engine will use wasm.');
    return;
  }
  const dir = nativeDir(env);
  const tfjs = tfjsCoreVersion();
  if (!tfjs) {
    say('Native TensorFlow backend not built (@tensorflow/tfjs-core is not installed); the engine will use wasm.');
    return;
  }
  if (isBuilt(dir, tfjs)) {
    say(`Native TensorFlow backend (tfjs-node ${tfjs}, TensorFlow ${TENSORFLOW_VERSION}) already built in ${dir}; the engine will use it.`);
    return;
  }
  const tools = checkPrerequisites(env);
  if (tools.missing) {
    say(`Native TensorFlow backend not built: ${tools.missing}; the engine will use wasm (slower training). Fix that and run \`node scripts/install-native.mjs\`.`);
    return;
  }
  const t0 = Date.now();
  try {
    mkdirSync(dir, { recursive: true });
    await build(dir, tfjs, tools, env);
    say(`Native TensorFlow backend (tfjs-node ${tfjs}, TensorFlow ${TENSORFLOW_VERSION}) built in ${Math.round((Date.now() - t0) / 1000)} s in ${dir}; the engine will use it.`);
  } catch (err) {
    rmSync(join(dir, 'pkg.tmp'), { recursive: true, force: true });
    say(`Native TensorFlow backend not built: ${err.message}; the engine will use wasm (slower training). Log: ${join(dir, 'build.log')}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  await main();
}
