/** `doctor-agent serve`: serves a checkpoint behind the SGLang / OpenAI-compatible HTTP API. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { UserError } from '../../jobs/context.ts';
import type { RunningServer } from '../../evaluation/server.ts';

export interface ServeArgs {
  model: string;
  host: string;
  port: number;
  maxBatch: number;
  name?: string;
  seed: number;
}

export function intArg(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    return n;
  };
}

/** Loads the model and starts the server; resolves once it listens. `close` stops both. */
export async function serve(args: ServeArgs): Promise<{ server: RunningServer; close(graceMs?: number): Promise<void> }> {
  if (!existsSync(join(args.model, 'config.json'))) {
    throw new UserError(`${args.model}: not a model folder (no config.json): --model needs a checkpoint folder with config.json, model.safetensors and tokenizer.json`);
  }
  const [{ loadEngineBackend }, { startServer }] = await Promise.all([import('../../evaluation/engine-backend.ts'), import('../../evaluation/server.ts')]);
  const backend = await loadEngineBackend(args.model, { name: args.name });
  const server = await startServer({ backend, host: args.host, port: args.port, maxBatch: args.maxBatch, seed: args.seed });
  return {
    server,
    async close(graceMs = 30_000) {
      await server.close(graceMs);
      backend.close();
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
    .option('--max-batch <n>', 'sequences decoded together', intArg(1), 32)
    .option('--name <name>', 'model name reported by /v1/models (default: the folder name)')
    .option('--seed <n>', 'seed for requests that give none', intArg(0), 0)
    .action(async (opts: ServeArgs) => {
      const { server, close } = await serve(opts);
      console.log(`serving ${opts.model} at ${server.url} (OpenAI base URL ${server.url}/v1, max batch ${opts.maxBatch}); Ctrl-C stops`);
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
