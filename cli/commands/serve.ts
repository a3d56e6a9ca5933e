/** `doctor-agent serve`: serves a checkpoint behind the SGLang / OpenAI-compatible HTTP API. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../../contract/errors.ts';
import type { RunningServer } from '../../evaluation/server.ts';

/** The environment variable `serve` and `eval` read the API key from when no --api-key is given. */
export const API_KEY_ENV = 'DOCTOR_AGENT_API_KEY';

export interface ServeArgs {
  model: string;
  host: string;
  port: number;
  maxBatch: number;
  /** Names the model is served under (vLLM's --served-model-name); the first is the main one. */
  servedModelName?: string[];
  /** The older spelling of one served name. */
  name?: string;
  seed: number;
  /** Required as a Bearer token on every route but /health. */
  apiKey?: string;
  maxPrompts?: number;
  maxQueue?: number;
  maxBodyMb?: number;
  /** Seconds a request body may take to arrive. */
  bodyTimeout?: number;
  /** Decode threads, each with a copy of the model, or `auto` (evaluation/engine-thread.ts servingReplicas); default 1. */
  replicas?: number | 'auto';
}

/** A warning when the server would listen beyond this machine without an API key; undefined when it does not. */
export function exposureWarning(host: string, apiKey: string | undefined): string | undefined {
  if (apiKey) return undefined;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)) return undefined;
  return `warning: serving on ${host} without an API key: anyone who can reach this address can use the model; ` +
    `set --api-key or ${API_KEY_ENV}, or keep --host 127.0.0.1`;
}

export function intArg(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    return n;
  };
}

/** A number parser for commander: finite, and inside [min, max] (min excluded when `aboveMin`). */
export function num(min: number, max: number, aboveMin = false) {
  return (value: string): number => {
    const n = Number(value);
    const range = `${aboveMin ? `> ${min}` : `>= ${min}`}${Number.isFinite(max) ? ` and <= ${max}` : ''}`;
    if (value.trim() === '' || !Number.isFinite(n) || n < min || (aboveMin && n === min) || n > max) {
      throw new InvalidArgumentError(`expected a number ${range}, got "${value}"`);
    }
    return n;
  };
}

/** A `--replicas` value for commander: a whole number from 1, or `auto`. */
export function replicasArg(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a number of decode threads >= 1, or auto, got "${value}"`);
  return n;
}

/** Loads the model and starts the server; resolves once it listens. `close` stops both. */
export async function serve(args: ServeArgs): Promise<{ server: RunningServer; replicas: number; close(graceMs?: number): Promise<void> }> {
  if (!existsSync(join(args.model, 'config.json'))) {
    throw new UserError(`${args.model}: not a model folder (no config.json): --model needs a checkpoint folder with config.json, model.safetensors and tokenizer.json`);
  }
  const [{ loadServingBackend, servingReplicas }, { startServer }] = await Promise.all([import('../../evaluation/engine-thread.ts'), import('../../evaluation/server.ts')]);
  const names = args.servedModelName?.length ? args.servedModelName : args.name ? [args.name] : undefined;
  const backend = await loadServingBackend(args.model, { name: names?.[0], replicas: servingReplicas(args.replicas, args.model) }).catch((err: unknown) => {
    // A broken checkpoint (bad config.json, missing or mismatched weights, no tokenizer) is the
    // user's to fix; a TypeError or RangeError is a bug and keeps its stack.
    if (err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError)) {
      throw new UserError(`${args.model}: cannot load the checkpoint: ${err.message}`);
    }
    throw err;
  });
  const server = await startServer({
    backend, host: args.host, port: args.port, maxBatch: args.maxBatch, seed: args.seed, apiKey: args.apiKey, servedModelNames: names,
    maxPromptsPerRequest: args.maxPrompts, maxWaiting: args.maxQueue,
    maxBodyBytes: args.maxBodyMb === undefined ? undefined : Math.round(args.maxBodyMb * 1024 * 1024),
    bodyTimeoutMs: args.bodyTimeout === undefined ? undefined : args.bodyTimeout * 1000,
  }).catch(async (err: unknown) => {
    await backend.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UserError(`cannot listen on ${args.host}:${args.port} (${code}${code === 'EADDRINUSE' ? ': the port is taken' : ''}): choose another --port (0 picks a free one) or --host`);
    }
    throw err;
  });
  return {
    server,
    replicas: backend.replicas,
    async close(graceMs = 30_000) {
      await server.close(graceMs);
      await backend.close();
    },
  };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve a checkpoint over HTTP: OpenAI /v1/chat/completions and /v1/completions, SGLang /generate, with continuous batching')
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, model.safetensors, tokenizer.json)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <n>', 'port; 0 picks a free one', intArg(0), 0)
    .option('--max-batch <n>', 'sequences decoded together (by each decode thread)', intArg(1), 32)
    .option('--replicas <n|auto>', 'decode threads at most, each with its own copy of the model, that requests spread over (the next starts when every running one decodes 16 sequences); auto: one per core, up to 8, as memory allows', replicasArg, 'auto')
    .option('--served-model-name <names...>', 'names the model is served under: /v1/models lists them, requests must name one (or "default"); default: RUN/STEP for a checkpoint in the artifact store, else the folder name')
    .addOption(new Option('--name <name>', 'one served model name (older spelling of --served-model-name)').hideHelp())
    .option('--seed <n>', 'seed for requests that give none', intArg(0), 0)
    .option('--api-key <key>', `require "Authorization: Bearer KEY" on every route but /health (default: $${API_KEY_ENV})`)
    .option('--max-prompts <n>', 'most sequences in one request: prompts × n (400 past it)', intArg(1), 4096)
    .option('--max-queue <n>', 'most sequences waiting for the batch (503 with Retry-After past it)', intArg(1), 16384)
    .option('--max-body-mb <n>', 'largest request body in MiB (413 past it)', num(0, Infinity, true), 4)
    .option('--body-timeout <s>', 'seconds a request body may take to arrive (408 past it)', num(0, Infinity, true), 30)
    .action(async (opts: ServeArgs) => {
      opts.apiKey ??= process.env[API_KEY_ENV] || undefined;
      if (opts.maxPrompts! > opts.maxQueue!) throw new UserError(`--max-prompts (${opts.maxPrompts}) is larger than --max-queue (${opts.maxQueue}): the queue must hold one whole request`);
      const warning = exposureWarning(opts.host, opts.apiKey);
      if (warning) process.stderr.write(warning + '\n');
      const { server, replicas, close } = await serve(opts);
      const names = server.servedModelNames.join('", "');
      console.log(`serving ${opts.model} as "${names}" at ${server.url} (OpenAI base URL ${server.url}/v1, max batch ${opts.maxBatch}${replicas > 1 ? ` on each of up to ${replicas} decode threads` : ''}${opts.apiKey ? ', API key required' : ''}); Ctrl-C stops`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.stderr.write('stopping: finishing requests in flight...\n');
          close(30_000).then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
