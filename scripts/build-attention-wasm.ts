/**
 * Assembles engine/wasm/attention.wat into engine/wasm/attention.wasm (committed, so the engine
 * needs no assembler at run time). test/engine/attention-kernel.test.ts checks the two agree.
 *
 *   node --import tsx scripts/build-attention-wasm.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import initWabt from 'wabt';

export const watPath = join(import.meta.dirname, '..', 'engine', 'wasm', 'attention.wat');
export const wasmPath = join(import.meta.dirname, '..', 'engine', 'wasm', 'attention.wasm');

/** The binary the WAT source assembles to. */
export async function assembleAttentionWasm(): Promise<Uint8Array> {
  const wabt = await initWabt();
  const mod = wabt.parseWat('attention.wat', readFileSync(watPath, 'utf8'), { simd: true, bulk_memory: true });
  try {
    mod.validate();
    return mod.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    mod.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bytes = await assembleAttentionWasm();
  writeFileSync(wasmPath, bytes);
  process.stdout.write(`written ${wasmPath} (${bytes.length} bytes)\n`);
}
