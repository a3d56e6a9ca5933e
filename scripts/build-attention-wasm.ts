/**
 * Assembles the engine's WebAssembly sources into binaries (committed, so the engine needs no
 * assembler at run time): engine/wasm/attention.wat into attention.wasm (128-bit SIMD, bulk
 * memory) and engine/wasm/gemm.wat into gemm.wasm (relaxed SIMD as well).
 * test/engine/attention-kernel.test.ts and test/engine/wasm-gemm.test.ts check they agree.
 *
 *   node --import tsx scripts/build-attention-wasm.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import initWabt from 'wabt';

const dir = join(import.meta.dirname, '..', 'engine', 'wasm');
export const watPath = join(dir, 'attention.wat');
export const wasmPath = join(dir, 'attention.wasm');
export const gemmWatPath = join(dir, 'gemm.wat');
export const gemmWasmPath = join(dir, 'gemm.wasm');

async function assemble(path: string, features: Record<string, boolean>): Promise<Uint8Array> {
  const wabt = await initWabt();
  const mod = wabt.parseWat(path, readFileSync(path, 'utf8'), features);
  try {
    mod.validate();
    return mod.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    mod.destroy();
  }
}

/** The binary attention.wat assembles to. */
export function assembleAttentionWasm(): Promise<Uint8Array> {
  return assemble(watPath, { simd: true, bulk_memory: true });
}

/** The binary gemm.wat assembles to. */
export function assembleGemmWasm(): Promise<Uint8Array> {
  return assemble(gemmWatPath, { simd: true, relaxed_simd: true });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [path, bytes] of [[wasmPath, await assembleAttentionWasm()], [gemmWasmPath, await assembleGemmWasm()]] as const) {
    writeFileSync(path, bytes);
    process.stdout.write(`written ${path} (${bytes.length} bytes)\n`);
  }
}
