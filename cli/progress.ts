/**
 * Live progress of a run in the terminal: one bar per step (items done / total, the
 * latest loss or reward, the attempt), redrawn from the run's progress. Without a
 * terminal (CI, pipes) it prints one line per step state change instead.
 */
import cliProgress from 'cli-progress';
import type { PipelineProgress, StepRecord } from '../workflows/types.ts';
import { progressText, stateText } from './format/step-text.ts';

const METRICS = ['loss', 'reward', 'accuracy'];

function metricText(r: StepRecord): string {
  const m = r.metrics ?? {};
  const shown = METRICS.filter((k) => typeof m[k] === 'number').map((k) => `${k} ${formatNumber(m[k])}`);
  return shown.join(' ');
}

function formatNumber(x: number): string {
  return Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 0.001) ? x.toExponential(2) : String(Number(x.toPrecision(4)));
}

export class ProgressView {
  private readonly stream: NodeJS.WriteStream;
  private multi?: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private readonly seen = new Map<string, string>();

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream;
    if (stream.isTTY) {
      this.multi = new cliProgress.MultiBar({
        stream,
        format: ' {step} |{bar}| {count} {state} {metrics}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      }, cliProgress.Presets.shades_classic);
    }
  }

  update(p: PipelineProgress): void {
    const width = Math.max(...p.steps.map((s) => s.id.length));
    for (const r of p.steps) {
      if (this.multi) {
        // Without a known total the bar stays empty until the step is done; the count still moves.
        const finished = ['succeeded', 'cached', 'skipped'].includes(r.state);
        const total = r.progress?.total && r.progress.total > 0 ? r.progress.total : 1;
        const value = finished ? total : r.progress?.total ? r.progress.current : 0;
        const count = r.progress ? progressText(r.progress) : '';
        const payload = { step: r.id.padEnd(width), state: stateText(r), metrics: metricText(r), count };
        let bar = this.bars.get(r.id);
        if (!bar) {
          bar = this.multi.create(total, value, payload);
          this.bars.set(r.id, bar);
        } else {
          bar.setTotal(total);
          bar.update(value, payload);
        }
      } else {
        const line = `${r.id}: ${stateText(r)}`;
        if (this.seen.get(r.id) !== line) {
          this.seen.set(r.id, line);
          if (r.state !== 'pending') this.stream.write(`  ${line}${r.error ? ` — ${r.error}` : ''}\n`);
        }
      }
    }
  }

  stop(): void {
    this.multi?.stop();
  }
}
