/**
 * A real HTTP server on 127.0.0.1 speaking the OpenAI chat completions API, answering
 * from a script. It stands in for the teacher and judge models (GPT-4o or an SGLang
 * server), which cannot be reached from the test machine. Every request is recorded.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  /** Index of the request, from 0. */
  n: number;
  body: { model: string; messages: { role: string; content: string }[]; temperature?: number; max_tokens?: number; logprobs?: boolean; top_logprobs?: number };
  /** The last user message. */
  prompt: string;
  headers: IncomingHttpHeaders;
}

/** What the script answers: reply text, an HTTP error, a delay, a dropped connection, or logprobs. */
export type Scripted =
  | string
  | { text: string; logprobs?: { token: string; logprob: number; top_logprobs?: { token: string; logprob: number }[] }[] }
  | { status: number; body?: string; headers?: Record<string, string> }
  | { delayMs: number; then: Scripted }
  | { drop: true };

export type Script = (req: SeenRequest) => Scripted | Promise<Scripted>;

export interface OpenAiServer {
  /** Base URL ending in /v1, as a pipeline's base_url. */
  url: string;
  requests: SeenRequest[];
  /** Most requests in flight at once so far. */
  maxInFlight: number;
  setScript(script: Script): void;
  close(): Promise<void>;
}

export async function startOpenAiServer(script: Script): Promise<OpenAiServer> {
  let current = script;
  let inFlight = 0;
  let closed = false;
  const pending = new Map<NodeJS.Timeout, () => void>();
  const state = { requests: [] as SeenRequest[], maxInFlight: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SeenRequest['body'];
        const users = body.messages.filter((m) => m.role === 'user');
        const seen: SeenRequest = { n: state.requests.length, body, prompt: users[users.length - 1]?.content ?? '', headers: req.headers };
        state.requests.push(seen);
        let reply = await current(seen);
        while (typeof reply === 'object' && 'delayMs' in reply) {
          // A delay ends early when the server closes, so a test never waits on a hung reply.
          await new Promise<void>((r) => {
            const timer = setTimeout(() => {
              pending.delete(timer);
              r();
            }, (reply as { delayMs: number }).delayMs);
            pending.set(timer, r);
          });
          if (closed) return;
          reply = (reply as { then: Scripted }).then;
        }
        if (typeof reply === 'object' && 'drop' in reply) {
          req.socket.destroy();
          return;
        }
        if (typeof reply === 'object' && 'status' in reply) {
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(reply.body ?? JSON.stringify({ error: { message: `scripted ${reply.status}` } }));
          return;
        }
        const text = typeof reply === 'string' ? reply : reply.text;
        const logprobs = typeof reply === 'string' ? undefined : reply.logprobs;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          id: `chatcmpl-${seen.n}`,
          object: 'chat.completion',
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: logprobs ? { content: logprobs } : null }],
          usage: { prompt_tokens: Math.ceil(seen.prompt.length / 4), completion_tokens: Math.ceil(text.length / 4), total_tokens: 0 },
        }));
      } catch (err) {
        res.writeHead(500).end(String(err));
      } finally {
        inFlight--;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
    setScript(s: Script) {
      current = s;
    },
    close: () => new Promise<void>((resolve) => {
      closed = true;
      for (const [timer, wake] of pending) {
        clearTimeout(timer);
        wake();
      }
      pending.clear();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
