/** A job context that records the protocol messages instead of printing them (for running a job module in-process). */
import type { JobContext } from '../../contract/job.ts';
import type { JobMessage } from '../../contract/protocol.ts';

export function recordingContext(params: Record<string, unknown>, outDir: string, signal = new AbortController().signal): JobContext & { messages: JobMessage[] } {
  const messages: JobMessage[] = [];
  return {
    spec: { kind: 'test', runId: 'r', stepId: 's', params, outDir, attempt: 1 },
    params,
    outDir,
    signal,
    messages,
    progress: (current, total, message, unit) => messages.push({ type: 'progress', current, total, message, unit }),
    metric: (values, step) => messages.push({ type: 'metric', values, step }),
    checkpoint: (path, step) => messages.push({ type: 'checkpoint', path, step }),
    artifact: (name, path) => messages.push({ type: 'artifact', name, path }),
    log: (message, level) => messages.push({ type: 'log', message, level }),
  };
}
