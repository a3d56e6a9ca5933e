/** The Plan's DAG as text: one block per layer (steps whose needs are all in earlier layers), then the edges. */
import { layers } from '../../dsl/graph.ts';
import type { Plan } from '../../dsl/plan.ts';

export function drawPlan(plan: Plan): string {
  const needs = new Map(plan.steps.map((s) => [s.id, s.needs]));
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const rows = layers(plan.steps.map((s) => s.id), needs);
  const idW = Math.max(...plan.steps.map((s) => s.id.length));
  const kindW = Math.max(...plan.steps.map((s) => s.uses.length));
  const out = [`${plan.name}: ${plan.steps.length} steps in ${rows.length} layers (plan ${plan.hash.slice(0, 12)})`, ''];
  rows.forEach((ids, n) => {
    out.push(`layer ${n + 1}${ids.length > 1 ? `  (${ids.length} steps may run in parallel)` : ''}`);
    ids.forEach((id, k) => {
      const s = byId.get(id)!;
      const branch = ids.length === 1 ? '──' : k === 0 ? '┌─' : k === ids.length - 1 ? '└─' : '├─';
      const from = s.needs.length ? `  ◀── ${s.needs.join(', ')}` : '';
      const cond = s.if ? `  [if ${s.if}${s.if === 'false' ? ': skipped' : ''}]` : '';
      out.push(`  ${branch} ${id.padEnd(idW)}  ${s.uses.padEnd(kindW)}  queue ${s.queue}${from}${cond}`);
    });
    if (n < rows.length - 1) out.push('        │');
  });
  const edges = plan.steps.flatMap((s) => s.needs.map((d) => [d, s.id]));
  if (edges.length) {
    out.push('', 'edges:');
    for (const s of plan.steps) {
      const to = edges.filter(([d]) => d === s.id).map(([, t]) => t);
      if (to.length) out.push(`  ${s.id.padEnd(idW)} ──▶ ${to.join(', ')}`);
    }
  }
  return out.join('\n');
}
