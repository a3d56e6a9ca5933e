/**
 * The serving benchmark's load generator, run in a process of its own (as clients are), so that
 * its HTTP and JSON work does not take turns of the server's event loop: `startLoadClient()`
 * forks it, and each `load(spec)` sends `spec.prompts.length` requests, `spec.concurrency` at a
 * time (each client sends its next request when its answer is in), and reports each request's
 * latency, its time to the first token when streamed, and the completion tokens counted by the server.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface LoadSpec {
  /** Base URL of the server, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** `/generate` (SGLang's native API, token ids) or `/v1/completions` (OpenAI, ids or text). */
  path: '/generate' | '/v1/completions';
  prompts: (number[] | string)[];
  concurrency: number;
  newTokens: number;
  /** Streamed (server-sent events, `/v1/completions` only): the time to the first token is measured. */
  stream?: boolean;
  /** The model name sent to `/v1/completions`. */
  model?: string;
  /** Also GET /health every this many ms while the load runs, and report how long each took. */
  probeHealthMs?: number;
}

export interface LoadResult {
  requests: number;
  concurrency: number;
  /** Completion tokens, as the server counted them. */
  tokens: number;
  seconds: number;
  tokensPerSec: number;
  latenciesS: number[];
  /** Streamed requests: seconds from sending to the first event that carries generated text. */
  ttftS: number[];
  /** With probeHealthMs: seconds each GET /health took. */
  healthS?: number[];
}

async function one(spec: LoadSpec, i: number): Promise<{ tokens: number; latency: number; ttft?: number }> {
  const prompt = spec.prompts[i];
  const body = spec.path === '/generate'
    ? { input_ids: prompt, sampling_params: { temperature: 1, max_new_tokens: spec.newTokens, seed: i } }
    : {
      model: spec.model ?? 'default', prompt, max_tokens: spec.newTokens, temperature: 1, seed: i,
      ...(spec.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
  const s = performance.now();
  let ttft: number | undefined;
  let tokens = 0;
  let pending = '';
  const { status, text } = await post(spec, JSON.stringify(body), spec.stream ? (piece) => {
    pending += piece;
    let end: number;
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
      if (!data || data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens: number } | null };
      if (ttft === undefined && chunk.choices?.some((c) => c.text)) ttft = (performance.now() - s) / 1000;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  } : undefined);
  if (status !== 200) throw new Error(`${spec.path}: HTTP ${status}: ${text.slice(0, 300)}`);
  const latency = (performance.now() - s) / 1000;
  if (!spec.stream) {
    const r = JSON.parse(text) as { meta_info?: { completion_tokens: number }; usage?: { completion_tokens: number } };
    return { tokens: r.meta_info?.completion_tokens ?? r.usage?.completion_tokens ?? 0, latency };
  }
  return { tokens, latency, ttft: ttft ?? latency };
}

/** Keep-alive connections, one per concurrent client at most (as a client library pools them). */
const agents = new Map<number, http.Agent>();

/**
 * POSTs a JSON body over node:http on a kept-alive connection; a streamed answer is handed to
 * `onText` as it arrives. (The load generator's own cost is part of every request's round trip:
 * node:http costs a few times less per request than fetch, so the clients measure the server
 * rather than themselves.)
 */
function post(spec: LoadSpec, body: string, onText?: (piece: string) => void): Promise<{ status: number; text: string }> {
  const url = new URL(`${spec.url}${spec.path}`);
  let agent = agents.get(spec.concurrency);
  if (!agent) agents.set(spec.concurrency, agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency }));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (piece: string) => {
        if (onText && res.statusCode === 200) onText(piece);
        else text += piece;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs one load in this process. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const n = spec.prompts.length;
  const latenciesS: number[] = [];
  const ttftS: number[] = [];
  let tokens = 0;
  let next = 0;
  let loading = true;
  const healthS: number[] = [];
  const probe = spec.probeHealthMs ? (async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (loading) {
      const s = performance.now();
      await new Promise<void>((resolve, reject) => {
        http.get(`${spec.url}/health`, { agent }, (res) => res.resume().on('end', resolve).on('error', reject)).on('error', reject);
      });
      healthS.push((performance.now() - s) / 1000);
      await new Promise((r) => setTimeout(r, spec.probeHealthMs));
    }
    agent.destroy();
  })() : undefined;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, n) }, async () => {
    while (next < n) {
      const r = await one(spec, next++);
      tokens += r.tokens;
      latenciesS.push(r.latency);
      if (r.ttft !== undefined) ttftS.push(r.ttft);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  loading = false;
  await probe;
  return {
    requests: n, concurrency: spec.concurrency, tokens, seconds, tokensPerSec: tokens / seconds, latenciesS, ttftS,
    ...(probe ? { healthS } : {}),
  };
}

export interface LoadClient {
  load(spec: LoadSpec): Promise<LoadResult>;
  close(): void;
}

/** Forks the load generator (this file) and talks to it over IPC, one load at a time. */
export function startLoadClient(): LoadClient {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: { resolve(r: LoadResult): void; reject(e: Error): void } | null = null;
  child.on('message', (m: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
    const w = waiting;
    waiting = null;
    if (!w) return;
    if (m.ok) w.resolve(m.result);
    else w.reject(new Error(m.error));
  });
  child.on('exit', (code) => {
    waiting?.reject(new Error(`the load generator exited (${code})`));
    waiting = null;
  });
  return {
    load(spec) {
      if (waiting) return Promise.reject(new Error('one load at a time'));
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        child.send(spec);
      });
    },
    close() {
      child.disconnect();
    },
  };
}

if (process.send && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.on('message', (spec: LoadSpec) => {
    runLoad(spec).then(
      (result) => process.send!({ ok: true, result }),
      (err: Error) => process.send!({ ok: false, error: err.message }),
    );
  });
}
