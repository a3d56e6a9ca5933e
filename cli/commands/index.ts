/** Every command of the doctor-agent CLI: one registrar per file, each adding its commands to the program. */
import type { Command } from 'commander';
import { registerCompile } from './compile.ts';
import { registerPlan } from './plan.ts';
import { registerSchema } from './schema.ts';
import { registerSteps } from './steps.ts';
import { registerValidate } from './validate.ts';
import { registerTokenizerCommands } from './tokenizer.ts';

export type Registrar = (program: Command) => void;

export const registrars: Registrar[] = [
  registerValidate,
  registerCompile,
  registerPlan,
  registerSteps,
  registerSchema,
  registerTokenizerCommands,
];
