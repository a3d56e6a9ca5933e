/**
 * Setup shared by the tests of the built-in server (test/evaluation/server*.test.ts): servers on
 * 127.0.0.1 that close by themselves after the file's tests, a JSON POST, and a poll for a condition.
 */
import { after } from 'node:test';
import { startServer, type RunningServer, type ServerOptions } from '../../evaluation/server.ts';

/** A function that starts servers, each closed (1 s grace) once the calling test file's tests are done. */
export function closingServers(): (opts: ServerOptions) => Promise<RunningServer> {
  const servers: RunningServer[] = [];
  after(async () => {
    for (const s of servers) await s.close(1000);
  });
  return async (opts) => {
    const s = await startServer(opts);
    servers.push(s);
    return s;
  };
}

/** POSTs `body` as JSON to `url + path`; the reply's status, headers and parsed JSON. */
export async function postJson(url: string, path: string, body: unknown, signal?: AbortSignal) {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  return { status: res.status, headers: res.headers, json: await res.json() as any };
}

/** Polls `cond` every 2 ms, failing with `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
