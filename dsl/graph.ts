/** The step graph: cycles, a deterministic topological order, transitive dependencies. Pure code. */

export type Needs = ReadonlyMap<string, readonly string[]>;

/**
 * Each cycle once, as ids starting at the earliest declared one; `a → b` means a needs b.
 * Iterative depth-first search: a long chain of needs cannot overflow the stack.
 */
export function findCycles(ids: readonly string[], needs: Needs): string[][] {
  const order = new Map(ids.map((id, i) => [id, i]));
  const visited = new Set<string>();
  const stack: string[] = [];
  /** Ids on the current path (the active ones), with their index in `stack`. */
  const onStack = new Map<string, number>();
  const found = new Map<string, string[]>();
  const frames: { id: string; deps: readonly string[]; next: number }[] = [];
  const enter = (id: string) => {
    visited.add(id);
    onStack.set(id, stack.length);
    stack.push(id);
    frames.push({ id, deps: needs.get(id) ?? [], next: 0 });
  };
  for (const root of ids) {
    if (visited.has(root)) continue;
    enter(root);
    while (frames.length) {
      const f = frames[frames.length - 1];
      if (f.next >= f.deps.length) {
        frames.pop();
        stack.pop();
        onStack.delete(f.id);
        continue;
      }
      const dep = f.deps[f.next++];
      if (!order.has(dep)) continue;
      if (onStack.has(dep)) {
        const cycle = stack.slice(onStack.get(dep));
        const first = cycle.reduce((a, b) => (order.get(a)! <= order.get(b)! ? a : b));
        const at = cycle.indexOf(first);
        const rotated = [...cycle.slice(at), ...cycle.slice(0, at)];
        found.set(rotated.join('\0'), rotated);
      } else if (!visited.has(dep)) enter(dep);
    }
  }
  return [...found.values()].sort((a, b) => order.get(a[0])! - order.get(b[0])!);
}

/**
 * Dependencies before dependents; among ready steps, the one declared first. Assumes no cycles.
 * Kahn's algorithm with the ready steps in a heap by declaration order: O(n log n + edges).
 */
export function topologicalOrder(ids: readonly string[], needs: Needs): string[] {
  const index = new Map(ids.map((id, i) => [id, i]));
  const waiting = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const id of ids) {
    const deps = [...new Set(needs.get(id) ?? [])].filter((d) => index.has(d));
    waiting.set(id, deps.length);
    for (const d of deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(id);
  }
  const heap: number[] = [];
  const push = (x: number) => {
    heap.push(x);
    for (let i = heap.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (heap[up] <= heap[i]) break;
      [heap[up], heap[i]] = [heap[i], heap[up]];
      i = up;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  ids.forEach((id, i) => {
    if (waiting.get(id) === 0) push(i);
  });
  const out: string[] = [];
  while (heap.length) {
    const id = ids[pop()];
    out.push(id);
    for (const next of dependents.get(id) ?? []) {
      const left = waiting.get(next)! - 1;
      waiting.set(next, left);
      if (left === 0) push(index.get(next)!);
    }
  }
  if (out.length < ids.length) throw new Error('topologicalOrder: the graph has a cycle');
  return out;
}

/** Every step `id` depends on, directly or not. */
export function ancestors(id: string, needs: Needs): Set<string> {
  const seen = new Set<string>();
  const todo = [id];
  while (todo.length) {
    for (const d of needs.get(todo.pop()!) ?? []) {
      if (!seen.has(d)) {
        seen.add(d);
        todo.push(d);
      }
    }
  }
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
