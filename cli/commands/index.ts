/** Every command of the doctor-agent CLI: one registrar per file, each adding its commands to the program. */
import type { Command } from 'commander';
import { registerCompile } from './compile.ts';
import { registerPlan } from './plan.ts';
import { registerSchema } from './schema.ts';
import { registerSteps } from './steps.ts';
import { registerValidate } from './validate.ts';
import { registerTokenizerCommands } from './tokenizer.ts';
import { registerServe } from './serve.ts';
import { registerEval } from './eval.ts';
import { registerServer } from './server.ts';
import { registerWorker } from './worker.ts';
import { registerRun } from './run.ts';
import { registerStart } from './start.ts';
import { registerStatus } from './status.ts';
import { registerList } from './list.ts';
import { registerCancel } from './cancel.ts';
import { registerPause } from './pause.ts';
import { registerResume } from './resume.ts';
import { registerLogs } from './logs.ts';
import { registerSchedule } from './schedule.ts';
import { registerKb } from './kb.ts';
import { registerSetup } from './setup.ts';

export type Registrar = (program: Command) => void;

export const registrars: Registrar[] = [
  registerValidate,
  registerCompile,
  registerPlan,
  registerSteps,
  registerSchema,
  registerTokenizerCommands,
  registerServer,
  registerWorker,
  registerRun,
  registerStart,
  registerStatus,
  registerList,
  registerCancel,
  registerPause,
  registerResume,
  registerLogs,
  registerSchedule,
  registerServe,
  registerEval,
  registerKb,
  registerSetup,
];
