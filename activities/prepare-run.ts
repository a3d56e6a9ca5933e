/** The first activity of every run: creates the run folder and records the Plan in it. */
import type { ArtifactStore } from '../runtime/store.ts';
import type { PrepareRunInput } from '../workflows/types.ts';

export function makePrepareRun(store: ArtifactStore) {
  return async function prepareRun(input: PrepareRunInput): Promise<{ dir: string }> {
    store.writeRunManifest(input.runId, input.plan);
    return { dir: store.runDir(input.runId) };
  };
}
