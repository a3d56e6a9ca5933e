/**
 * Reading pipeline and params files defensively: alias bombs, devices, pipes, folders, huge
 * files, files that are not pipelines and bytes that are not UTF-8 are positioned errors
 * (never a stack trace, a hang, or an unrelated file's contents echoed back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeUtf8, TextFileError } from '../../common/text.ts';
import { formatDiagnostic } from '../../dsl/diagnostics.ts';
import { MAX_SOURCE_BYTES, parseSource } from '../../dsl/source.ts';
import { compileFiles, compileText, writeFiles } from './helpers.ts';
import { compileFile, CompileError } from '../../dsl/compile.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const STEP = 'steps:\n  - id: a\n    uses: command\n    with: { run: [echo] }\n';

function located(r: { errors: { file: string; line: number; col: number; message: string }[] }): string[] {
  return r.errors.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}`);
}

test('an alias bomb is a positioned YAML error at its first alias, not a stack trace', () => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (const [k, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e']]) levels.push(`${k}: &${k} [${Array(9).fill(`*${prev}`).join(', ')}]`);
  const r = compileText(`name: t\n${levels.join('\n')}\n${STEP}`);
  assert.equal(r.errors.length, 1, r.formatted);
  assert.match(located(r)[0], /^pipeline\.yaml:3:8: YAML: aliases \(\*a and others\) copy anchored values more than 100 times in all: write the values out, or use fewer aliases$/);
  // The same in a --params file.
  const p = compileFiles({ 'pipeline.yaml': `name: t\nparams:\n  x: { type: string, default: y }\n${STEP}`, 'p.yaml': `${levels.join('\n')}\n` }, { paramsFile: 'p.yaml' });
  assert.match(located(p)[0], /^p\.yaml:2:8: YAML: aliases \(\*a and others\)/);
  // A few aliases are fine.
  const fine = compileText(`name: t\nsteps:\n  - id: a\n    uses: command\n    with: { run: &r [echo, hi] }\n  - id: b\n    uses: command\n    with: { run: *r }\n`);
  assert.ok(fine.plan, fine.formatted);
});

test('extends: a device, a folder or a pipe is refused at the extends line, before anything is read', () => {
  const dir = writeFiles({ 'p.yaml': `name: t\nextends: fifo\n${STEP}` });
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  // A pipe nobody writes to blocks a plain read forever: run the CLI in a child process, with a time limit.
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/doctor-agent.js'), 'validate', 'p.yaml'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, 'validate hung reading the pipe');
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.startsWith('p.yaml:2:10: cannot read fifo: it is a pipe (FIFO), not a regular file; give the path of a pipeline file (YAML text)\n'), r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  for (const [target, what] of [['/dev/zero', 'a device'], ['/dev/null', 'a device'], ['.', 'a folder']]) {
    const r = compileText(`name: t\nextends: ${target}\n${STEP}`);
    assert.deepEqual(located(r), [`pipeline.yaml:2:10: cannot read ${target}: it is ${what}, not a regular file; give the path of a pipeline file (YAML text)`]);
  }
  const top = compileFiles({ 'x.yaml': '' }, {}, '/dev/zero');
  assert.deepEqual(located(top), ['/dev/zero:0:0: it is a device, not a regular file; give the path of a pipeline file (YAML text)']);
});

test('a pipeline file over the size limit is refused, saying the limit and what to do', () => {
  const big = `name: t\n${STEP}${'# padding\n'.repeat(MAX_SOURCE_BYTES / 10 + 1)}`;
  const r = compileFiles({ 'child.yaml': `extends: big.yaml\nname: c\n${STEP}`, 'big.yaml': big });
  assert.deepEqual(located(r), ['child.yaml:1:10: cannot read big.yaml: it is 1 MiB, over the limit of 1 MiB for a pipeline file: keep data in files that steps read, and split a long pipeline with extends:']);
  const top = compileFiles({ 'big.yaml': big });
  assert.match(located(top)[0], /^big\.yaml:0:0: it is 1 MiB, over the limit of 1 MiB for a pipeline file/);
});

test('extends naming a file that is not a pipeline says so, without echoing the file', () => {
  const files = {
    'p.yaml': '',
    'passwd': 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n',
    'package.json': '{"name": "secret-name", "version": "1.0.0", "scripts": {"x": "y"}}\n',
    'list.yaml': '- a\n- b\n',
    'broken.txt': 'password = "hunter2\n  : [\n',
  };
  for (const target of ['passwd', 'package.json', 'list.yaml', 'broken.txt']) {
    const r = compileFiles({ ...files, 'p.yaml': `name: t\nextends: ${target}\n${STEP}` }, {}, 'p.yaml');
    assert.deepEqual(located(r), [`p.yaml:2:10: ${target} is not a pipeline file (a YAML mapping with name: and steps:); extends: names the pipeline this one builds on`]);
    const shown = r.formatted!;
    for (const secret of ['root:x', 'secret-name', 'hunter2', '- a']) assert.ok(!shown.includes(secret), `${target}: ${shown}`);
  }
  // A pipeline with a mistake is still reported inside it.
  const typo = compileFiles({ 'p.yaml': `name: t\nextends: parent.yaml\n`, 'parent.yaml': `name: parent\nsteps:\n  - id: a\n    uses: command\n    with: { run: [echo] }\n    retyr: 2\n` });
  assert.match(located(typo)[0], /^parent\.yaml:6:5: unknown key 'retyr' \(did you mean 'retry'\?\)/);
});

test('duplicate keys are found with one pass over each mapping (not the parser\'s pairwise check)', () => {
  const { src } = parseSource('a: 1\n', 'x.yaml');
  assert.equal(src.doc.options.uniqueKeys, false, "the parser's own check compares every pair of keys: quadratic");
  const block = compileText(`name: t\nsteps:\n  - id: a\n    uses: command\n    with:\n      run: [echo]\n      run: [ls]\n`);
  assert.deepEqual(located(block), ['pipeline.yaml:7:7: YAML: Map keys must be unique']);
  const flow = compileText(`name: t\nsteps:\n  - id: a\n    uses: command\n    with: { run: [echo], env: { A: x, B: y, A: z } }\n`);
  assert.deepEqual(located(flow), ['pipeline.yaml:5:45: YAML: Map keys must be unique']);
  // 40,000 keys, the last one repeated: found, on its line.
  const keys = Array.from({ length: 40_000 }, (_, i) => `        K${i}: v`).join('\n');
  const many = compileText(`name: t\nsteps:\n  - id: a\n    uses: command\n    with:\n      run: [echo]\n      env:\n${keys}\n        K17: again\n`);
  assert.deepEqual(located(many), ['pipeline.yaml:40008:9: YAML: Map keys must be unique']);
});

test('bytes that are not UTF-8 in a pipeline or a params file are an error naming the file and line', () => {
  const dir = writeFiles({});
  writeFileSync(join(dir, 'p.yaml'), Buffer.concat([Buffer.from(`name: t\nparams:\n  x: { type: string, default: y }\n${STEP}`), Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  writeFileSync(join(dir, 'ok.yaml'), `name: t\nparams:\n  x: { type: string, default: y }\n${STEP}`);
  writeFileSync(join(dir, 'params.yaml'), Buffer.concat([Buffer.from('x: "na'), Buffer.from([0xef, 0xbf]), Buffer.from('ve"\n')]));
  writeFileSync(join(dir, 'child.yaml'), 'extends: p.yaml\nname: c\n');
  const errorsOf = (file: string, opts = {}) => {
    try {
      compileFile(file, { cwd: dir, ...opts });
      return [];
    } catch (err) {
      assert.ok(err instanceof CompileError, String(err));
      return err.diagnostics.map((d) => formatDiagnostic(d).split('\n')[0]);
    }
  };
  const hint = 'save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW)';
  assert.deepEqual(errorsOf('p.yaml'), [`p.yaml:8:6: line 8 holds bytes that are not UTF-8 (0xe9 at byte 6 of the line): a pipeline file is UTF-8 text; ${hint}`]);
  assert.deepEqual(errorsOf('ok.yaml', { paramsFile: 'params.yaml' }), [`params.yaml:1:7: line 1 holds bytes that are not UTF-8 (0xef at byte 7 of the line): a params file is UTF-8 text; ${hint}`]);
  assert.deepEqual(errorsOf('child.yaml'), [`child.yaml:1:10: cannot read p.yaml: line 8 holds bytes that are not UTF-8 (0xe9 at byte 6 of the line): a pipeline file is UTF-8 text; ${hint}`]);
});

test('decodeUtf8: strict, and the first bad byte is found on its line', () => {
  assert.equal(decodeUtf8(Buffer.from('\ufeffcafé ✓ 𝄞\n')), 'café ✓ 𝄞\n', 'a byte-order mark is dropped');
  const at = (bytes: number[]) => {
    try {
      decodeUtf8(Uint8Array.from(bytes));
      return undefined;
    } catch (err) {
      assert.ok(err instanceof TextFileError);
      return [err.line, err.col];
    }
  };
  const a = 0x61;
  const nl = 0x0a;
  assert.deepEqual(at([a, nl, a, 0xff]), [2, 2]);
  assert.deepEqual(at([a, nl, nl, 0xc3, 0x28]), [3, 1], 'a 2-byte sequence cut short');
  assert.deepEqual(at([a, 0xef, 0xbf, a]), [1, 2], 'a cut sequence that starts like U+FFFD');
  assert.deepEqual(at([0xc3, 0xa9, 0xed, 0xa0, 0x80]), [1, 3], 'a surrogate after a good character');
  assert.deepEqual(at([a, 0xf0, 0x9f, 0x98]), [1, 2], 'cut at the end');
  assert.equal(at([0xef, 0xbf, 0xbd]), undefined, 'a real U+FFFD is fine');
});
