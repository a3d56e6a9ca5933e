/**
 * The pipeline workflow's input as a client gives it: the PipelineInput that
 * `doctor-agent start` sends, or a bare Plan (the output of `doctor-agent compile FILE
 * --json`, e.g. given to `temporal workflow start --input-file`). Deterministic, no Node
 * imports: the workflow bundle imports this file.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { PLAN_FORMAT, type Plan } from '../dsl/plan.ts';
import type { PipelineInput } from './types.ts';

function looksLikePlan(v: unknown): v is Plan {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return typeof o.name === 'string' && Array.isArray(o.steps) && 'format' in o;
}

/** The input as a PipelineInput; anything else fails the run (not retried) with what to give instead. */
export function pipelineInputOf(given: unknown): PipelineInput {
  const o = given && typeof given === 'object' ? (given as Record<string, unknown>) : undefined;
  const input: PipelineInput | undefined = looksLikePlan(o?.plan) ? (o as unknown as PipelineInput)
    : looksLikePlan(o) ? { plan: o } : undefined;
  if (!input) {
    throw ApplicationFailure.nonRetryable(
      'the workflow input is not a Plan: give the output of `doctor-agent compile FILE --json` '
        + '(or {"plan": <that Plan>, "options": {"noCache": true}})',
      'InvalidInput',
    );
  }
  if (input.plan.format !== PLAN_FORMAT) {
    throw ApplicationFailure.nonRetryable(
      `the Plan has format ${JSON.stringify(input.plan.format)}; this worker runs format ${PLAN_FORMAT}: compile the pipeline again with this version`,
      'InvalidInput',
    );
  }
  return input;
}
