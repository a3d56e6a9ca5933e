/**
 * Environment for processes that run the engine (built-in jobs, benchmarks). On Linux (glibc),
 * malloc serves blocks above a threshold (128 KiB, rising to at most 32 MiB) with a fresh mmap,
 * and every page of a fresh mapping is faulted in and zeroed on first touch. The engine allocates
 * and frees tensors of several MiB to tens of MiB every kernel (activations, the optimizer's flat
 * vectors), so those page faults cost more than the arithmetic: an element-wise product of 10M
 * floats took 30 ms, against 6 ms from reused heap memory. Raising the threshold to 256 MiB and
 * keeping freed memory (trim threshold 1 GiB) makes such blocks come from memory already mapped;
 * the process's resident size then stays near its peak instead of shrinking between steps.
 * Values already in the environment are kept; glibc reads them once, at process start, so they
 * must be in the environment a process starts with. Other C libraries ignore them.
 */
export const ENGINE_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(256 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(1024 * 1024 * 1024),
};

/** The entries of ENGINE_MALLOC_ENV that `env` does not set. */
export function engineProcessEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(ENGINE_MALLOC_ENV).filter(([k]) => env[k] === undefined));
}
