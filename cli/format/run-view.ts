/**
 * A run as text: its status, timing, links and one line per step. Loads the Temporal
 * client (through runtime/runs.ts): import it inside a command's action.
 */
import { closedStatus, type RunView } from '../../runtime/runs.ts';
import { progressText, stateText } from './step-text.ts';

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatRunView(v: RunView, link?: string): string {
  const p = v.progress;
  const closed = v.execution !== 'RUNNING';
  // A closed run's outcome is Temporal's; a running one's (running or paused) is the workflow's own.
  const status = closed ? closedStatus(v.execution) : (p?.status ?? 'running');
  const end = v.closeTime ?? new Date();
  const lines = [
    `run ${v.id}${v.pipeline ? ` (${v.pipeline})` : ''}: ${status}`,
    `started ${v.startTime.toISOString()}, ${v.closeTime ? 'took' : 'running for'} ${duration(end.getTime() - v.startTime.getTime())}`,
  ];
  const runDir = p?.runDir ?? v.result?.runDir;
  if (runDir) lines.push(`artifacts: ${runDir}`);
  if (link) lines.push(`web UI: ${link}`);
  if (v.failure) lines.push(`failure: ${v.failure}`);
  if (p) {
    const w = Math.max(...p.steps.map((s) => s.id.length));
    lines.push('');
    for (const s of p.steps) {
      const bits = [stateText(s)];
      if (s.progress) bits.push(progressText(s.progress));
      const m = Object.entries(s.metrics ?? {}).slice(0, 4).map(([k, x]) => `${k}=${Number(x.toPrecision(4))}`);
      if (m.length) bits.push(m.join(' '));
      const outputs = s.state === 'succeeded' || s.state === 'cached' ? Object.entries(s.outputs ?? {}) : [];
      // A finished step shows what it produced; one still going (or failed) its last checkpoint.
      if (s.checkpoint && outputs.length === 0) bits.push(`checkpoint ${s.checkpoint}`);
      if (s.reason) bits.push(s.reason);
      lines.push(`  ${s.id.padEnd(w)}  ${bits.join(' · ')}`);
      for (const [k, x] of outputs) lines.push(`  ${' '.repeat(w)}  ${k}: ${typeof x === 'number' ? Number(x.toPrecision(4)) : String(x)}`);
      if (s.resumedFrom) lines.push(`  ${' '.repeat(w)}  resumed from ${s.resumedFrom}`);
      if (s.cacheMiss) lines.push(`  ${' '.repeat(w)}  cache miss: ${s.cacheMiss}`);
      if (s.error) lines.push(`  ${' '.repeat(w)}  ${s.error.split('\n').join(`\n  ${' '.repeat(w)}  `)}`);
      const wait = v.waits?.find((x) => x.step === s.id);
      if (wait && s.state === 'running') lines.push(`  ${' '.repeat(w)}  waiting: ${wait.text}`);
    }
  } else if (v.result) {
    const entries = Object.entries(v.result.steps);
    const w = Math.max(...entries.map(([id]) => id.length));
    lines.push('');
    for (const [id, r] of entries) lines.push(`  ${id.padEnd(w)}  ${r.state}`);
  } else if (!closed) {
    lines.push('', '(no worker answered the progress query yet: is a worker running? `doctor-agent worker` starts one)');
    // What the server itself knows of the steps in flight.
    for (const wait of v.waits ?? []) lines.push(`  ${wait.step}  waiting: ${wait.text}`);
  }
  return lines.join('\n');
}
