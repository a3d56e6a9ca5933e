/** The step graph: cycles, a deterministic topological order, transitive dependencies. Pure code. */

export type Needs = ReadonlyMap<string, readonly string[]>;

/** Each cycle once, as ids starting at the earliest declared one; `a → b` means a needs b. */
export function findCycles(ids: readonly string[], needs: Needs): string[][] {
  const order = new Map(ids.map((id, i) => [id, i]));
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const found = new Map<string, string[]>();
  const visit = (id: string): void => {
    state.set(id, 'active');
    stack.push(id);
    for (const dep of needs.get(id) ?? []) {
      if (!order.has(dep)) continue;
      if (state.get(dep) === 'active') {
        const cycle = stack.slice(stack.indexOf(dep));
        const first = cycle.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
        const at = cycle.indexOf(first);
        const rotated = [...cycle.slice(at), ...cycle.slice(0, at)];
        found.set(rotated.join('\0'), rotated);
      } else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  return [...found.values()].sort((a, b) => order.get(a[0])! - order.get(b[0])!);
}

/** Dependencies before dependents; among ready steps, the one declared first. Assumes no cycles. */
export function topologicalOrder(ids: readonly string[], needs: Needs): string[] {
  const done = new Set<string>();
  const out: string[] = [];
  while (out.length < ids.length) {
    const next = ids.find((id) => !done.has(id) && (needs.get(id) ?? []).every((d) => done.has(d) || !ids.includes(d)));
    if (next === undefined) throw new Error('topologicalOrder: the graph has a cycle');
    done.add(next);
    out.push(next);
  }
  return out;
}

/** Every step `id` depends on, directly or not. */
export function ancestors(id: string, needs: Needs): Set<string> {
  const seen = new Set<string>();
  const walk = (x: string) => {
    for (const d of needs.get(x) ?? []) {
      if (!seen.has(d)) {
        seen.add(d);
        walk(d);
      }
    }
  };
  walk(id);
  return seen;
}

/** Layers for drawing: a step's layer is one more than its deepest dependency's. */
export function layers(order: readonly string[], needs: Needs): string[][] {
  const depth = new Map<string, number>();
  const out: string[][] = [];
  for (const id of order) {
    const d = Math.max(-1, ...(needs.get(id) ?? []).map((x) => depth.get(x) ?? -1)) + 1;
    depth.set(id, d);
    (out[d] ??= []).push(id);
  }
  return out;
}
