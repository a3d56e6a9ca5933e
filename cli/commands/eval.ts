/** `doctor-agent eval`: evaluates a checkpoint or a running server on an evaluation file. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { readJsonFile, writeFileAtomic } from '../../common/fs.ts';
import { UserError } from '../../contract/errors.ts';
import { MAX_TEMPERATURE } from '../../evaluation/api.ts';
import type { EvalReport } from '../../evaluation/client.ts';
import { API_KEY_ENV, intArg, num, replicasArg, serve } from './serve.ts';

export interface EvalArgs {
  data: string;
  model?: string;
  baseUrl?: string;
  modelName?: string;
  apiKey?: string;
  apiKeyEnv?: string;
  out: string;
  strict: boolean;
  limit?: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  concurrency: number;
  /** With --model: the built-in server's decode threads (serve's --replicas). */
  replicas?: number | 'auto';
  seed: number;
  policy?: 'max' | 'last' | 'first';
  scorer?: 'huatuo' | 'rules';
  api?: 'completions' | 'chat';
  tokenizer?: string;
  history?: string[];
  retries?: number;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Runs the evaluation and writes results.jsonl, report.json and report.html into `out`. */
export async function evaluate(args: EvalArgs, log: (line: string) => void = () => {}): Promise<EvalReport> {
  if (!args.model === !args.baseUrl) {
    throw new UserError('give either --model DIR (a checkpoint to serve here) or --base-url URL with --model-name NAME (a running server)');
  }
  if (args.baseUrl && !args.modelName) throw new UserError('--base-url needs --model-name (the model name the server expects)');
  if (args.baseUrl) checkBaseUrl(args.baseUrl);
  if (!existsSync(args.data)) throw new UserError(`${args.data}: evaluation file not found (--data)`);
  if (!statSync(args.data).isFile()) throw new UserError(`${args.data}: a folder, not an evaluation file (--data needs a JSON file: source name → MCQ items)`);
  if (existsSync(args.out) && !statSync(args.out).isDirectory()) {
    throw new UserError(`${args.out}: exists and is not a folder (--out): give a folder for results.jsonl, report.json and report.html`);
  }
  const history = (args.history ?? []).map((f) => {
    let r: EvalReport;
    try {
      r = readJsonFile<EvalReport>(f);
    } catch (err) {
      throw new UserError(`--history: ${(err as Error).message}`);
    }
    if (!r?.accuracy?.sources || typeof r.timing?.finished_at !== 'string') {
      throw new UserError(`--history: ${f}: not an evaluation report (no accuracy.sources or timing.finished_at): give report.json files written by eval`);
    }
    return r;
  });
  // The report renderer loads vega: only when an evaluation runs.
  const [{ runEval, EvalRunError }, { renderReportHtml }] = await Promise.all([import('../../evaluation/client.ts'), import('../../evaluation/report.ts')]);
  let served: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    let baseUrl = args.baseUrl!;
    let model = args.modelName!;
    if (args.model) {
      served = await serve({ model: args.model, host: '127.0.0.1', port: 0, maxBatch: args.concurrency, seed: args.seed, replicas: args.replicas });
      baseUrl = `${served.server.url}/v1`;
      model = args.modelName ?? 'default'; // as HuatuoGPT-o1 names the served model
      log(`serving ${args.model} at ${served.server.url}`);
    }
    let last = 0;
    const report = await runEval({
      data: args.data, baseUrl, model, outDir: args.out, strict: args.strict,
      scorer: args.scorer, api: args.api, tokenizer: args.tokenizer ?? args.model,
      // --api-key, else the variable --api-key-env names, else DOCTOR_AGENT_API_KEY (as `serve` reads it).
      apiKey: args.apiKey ?? (args.apiKeyEnv ? undefined : process.env[API_KEY_ENV] || undefined), apiKeyEnv: args.apiKeyEnv,
      temperature: args.temperature, topP: args.topP, maxTokens: args.maxTokens, seed: args.seed,
      concurrency: args.concurrency, limitPerSource: args.limit, policy: args.policy,
      ...(args.retries !== undefined ? { http: { maxRetries: args.retries } } : {}),
      onProgress(done, total) {
        if (done === total || Date.now() - last > 2000) {
          last = Date.now();
          log(`  ${done}/${total} items`);
        }
      },
    }).catch((err: unknown) => {
      // The server is down or refuses every request: the user's to fix, not a bug.
      throw err instanceof EvalRunError ? new UserError(err.message) : err;
    });
    if (report.accuracy.dropped_empty > 0) {
      log(`${report.accuracy.dropped_empty} item(s) with an empty output left out of the accuracies (the ${report.scorer} scorer drops them, as HuatuoGPT-o1 does)`);
    }
    if (report.counts.failed > 0) {
      log(`${report.counts.failed} item(s) failed (${report.counts.prompt_too_long} with a prompt longer than the model's context): ` +
        `counted as not answered; their rows in ${join(args.out, 'results.jsonl')} have "error"`);
    }
    writeFileAtomic(join(args.out, 'report.html'), await renderReportHtml(report, history));
    return report;
  } finally {
    await served?.close(5000);
  }
}

/** A base URL the client can use: http(s), host, and no /chat/completions tail. */
function checkBaseUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`--base-url: "${value}" is not a URL: give the server's OpenAI base URL, e.g. http://127.0.0.1:30000/v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(`--base-url: "${value}" is not an http:// or https:// URL: give the server's OpenAI base URL, e.g. http://127.0.0.1:30000/v1`);
  }
  if (/\/chat\/completions\/?$/.test(url.pathname)) {
    throw new UserError(`--base-url: "${value}" ends with /chat/completions: give the part before it, e.g. ${value.replace(/\/chat\/completions\/?$/, '')}`);
  }
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('answer an evaluation file\'s MCQs through a served checkpoint or any OpenAI-compatible server, and score accuracy per source')
    .requiredOption('--data <file>', 'evaluation file: source name → MCQ items (JSON)')
    .option('--model <dir>', 'checkpoint folder to serve with the built-in server for this evaluation')
    .option('--base-url <url>', 'a running OpenAI / SGLang-compatible server, e.g. http://127.0.0.1:30000/v1')
    .option('--model-name <name>', 'model name sent to the server')
    .option('--api-key <key>', `the server's API key, sent as a Bearer token (default: $${API_KEY_ENV})`)
    .option('--api-key-env <var>', 'environment variable holding the API key, if the server needs one')
    .option('--out <dir>', 'output folder (results.jsonl, report.json, report.html); rerunning resumes', 'eval-out')
    .option('--strict', 'HuatuoGPT-o1\'s strict prompt: end the response with "The answer is A."', false)
    .option('--scorer <name>', 'huatuo: HuatuoGPT-o1\'s scorer exactly (empty outputs dropped, per-source max of first and last); rules: stricter rules', 'huatuo')
    .option('--api <api>', 'completions: /v1/completions with the prompt rendered through the model\'s chat template (as HuatuoGPT-o1); chat: /v1/chat/completions', 'completions')
    .option('--tokenizer <dir>', 'the model\'s folder, for its chat template with --api completions (default: --model)')
    .option('--limit <n>', 'only the first N items of each source', intArg(1))
    .option('--temperature <t>', 'sampling temperature (0 to 2, as the served API takes)', num(0, MAX_TEMPERATURE), 0.5)
    .option('--top-p <p>', 'nucleus sampling', num(0, 1, true), 0.9)
    .option('--max-tokens <n>', 'max tokens per answer', intArg(1), 2000)
    .option('--concurrency <n>', 'requests in flight', intArg(1), 32)
    .option('--replicas <n|auto>', 'with --model: decode threads of the built-in server, each with a copy of the model (as serve\'s --replicas)', replicasArg, 'auto')
    .option('--seed <n>', 'base seed (each item gets its own)', intArg(0), 0)
    .option('--policy <which>', 'headline accuracy: "max" of first and last per source, the "last" or the "first" extracted answer (default: max for huatuo, last for rules)')
    .option('--history <reports...>', 'earlier report.json files, for the accuracy-over-time chart')
    .option('--retries <n>', 'retries of a request that fails for the server\'s reasons (unreachable, 429, 5xx) before the run stops', intArg(0))
    .action(async (opts: EvalArgs) => {
      if (opts.policy !== undefined && !['max', 'last', 'first'].includes(opts.policy)) throw new UserError(`--policy: expected "max", "last" or "first", got "${opts.policy}"`);
      if (opts.scorer !== 'huatuo' && opts.scorer !== 'rules') throw new UserError(`--scorer: expected "huatuo" or "rules", got "${opts.scorer}"`);
      if (opts.api !== 'completions' && opts.api !== 'chat') throw new UserError(`--api: expected "completions" or "chat", got "${opts.api}"`);
      const report = await evaluate(opts, (line) => process.stderr.write(line + '\n'));
      const a = report.accuracy;
      for (const [source, s] of Object.entries(a.sources)) {
        console.log(`${source.padEnd(28)} ${String(s.n).padStart(5)}  ${pct(s.accuracy)}${s.failed ? `   (${s.failed} failed, ${s.prompt_too_long} prompt too long)` : ''}`);
      }
      const policyNote = a.policy === 'max' ? `better of first and last per source; first: ${pct(a.average_first)}, last: ${pct(a.average_last)}`
        : `${a.policy} answer; ${a.policy === 'last' ? 'first' : 'last'} answer: ${pct(a.policy === 'last' ? a.average_first : a.average_last)}`;
      console.log(`${'average'.padEnd(28)} ${String(a.n).padStart(5)}  ${pct(a.average)}   (${report.scorer} scorer, ${policyNote})`);
      console.log(`wrote ${join(opts.out, 'results.jsonl')}, report.json and report.html`);
    });
}
