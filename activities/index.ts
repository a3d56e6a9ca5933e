/** Every activity the worker registers, bound to an artifact store. */
import type { ArtifactStore } from '../runtime/store.ts';
import type { PipelineActivities } from '../workflows/types.ts';
import { makePrepareRun } from './prepare-run.ts';
import { makeRunStep } from './run-step.ts';

export function createActivities(store: ArtifactStore): PipelineActivities {
  return {
    prepareRun: makePrepareRun(store),
    runStep: makeRunStep(store),
  };
}
