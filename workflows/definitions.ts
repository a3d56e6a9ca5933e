/** The workflow's query, signals and search attributes: shared by the workflow and its clients. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { PipelineProgress } from './types.ts';

export const progressQuery = defineQuery<PipelineProgress>('progress');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');

export const PIPELINE_KEY = defineSearchAttributeKey('DoctorAgentPipeline', SearchAttributeType.KEYWORD);
export const STATUS_KEY = defineSearchAttributeKey('DoctorAgentStatus', SearchAttributeType.KEYWORD);
