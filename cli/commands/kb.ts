/** `doctor-agent kb generate` and `doctor-agent kb stats`: the built-in knowledge-base benchmark. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileAtomic } from '../../common/fs.ts';
import { UserError } from '../../contract/errors.ts';
import { splitCombos } from '../../data/kb/combos.ts';
import { generateKb, serializeKb } from '../../data/kb/generate.ts';
import { loadKb } from '../../data/kb/load.ts';
import { SPECIALTIES } from '../../data/kb/schema.ts';
import { VIGNETTE_TEMPLATES, QUESTION_TEMPLATES } from '../../data/kb/templates.ts';

export interface KbGenerateArgs {
  out: string;
  seed: number;
  trainSize: number;
  evalSize: number;
  cot: 'full' | 'brief';
  specialties?: string[];
}

export interface KbGenerateSummary {
  files: Record<'mcq' | 'verifiable' | 'sft' | 'eval', string>;
  train: number;
  eval: Record<string, number>;
  seconds: number;
}

/** Generates the benchmark and writes its four files (each atomically) into args.out. */
export function kbGenerate(args: KbGenerateArgs): KbGenerateSummary {
  const started = performance.now();
  const data = generateKb({ seed: args.seed, trainSize: args.trainSize, evalSize: args.evalSize, cotStyle: args.cot, specialties: args.specialties });
  const text = serializeKb(data);
  const files = {} as KbGenerateSummary['files'];
  for (const name of ['mcq', 'verifiable', 'sft', 'eval'] as const) {
    files[name] = join(args.out, `${name}.json`);
    writeFileAtomic(files[name], text[name]);
  }
  const evalCounts = Object.fromEntries(Object.entries(data.eval).map(([k, v]) => [k, v.length]));
  return { files, train: data.mcq.length, eval: evalCounts, seconds: (performance.now() - started) / 1000 };
}

export interface KbStats {
  conditions: number;
  specialties: { name: string; conditions: number; trainCombos: number; heldOutCombos: number }[];
  findings: number;
  labs: number;
  vignetteTemplates: { train: number; heldOut: number };
  questionTemplates: { train: number; heldOut: number };
}

export function kbStats(): KbStats {
  const kb = loadKb();
  const specialties = SPECIALTIES.map((name) => {
    const cs = kb.filter((c) => c.specialty === name);
    const splits = cs.map((c) => splitCombos(c));
    return {
      name, conditions: cs.length,
      trainCombos: splits.reduce((n, s) => n + s.train.length, 0),
      heldOutCombos: splits.reduce((n, s) => n + s.heldOut.length, 0),
    };
  });
  const count = (list: readonly { heldOut: boolean }[]) => ({ train: list.filter((t) => !t.heldOut).length, heldOut: list.filter((t) => t.heldOut).length });
  return {
    conditions: kb.length,
    specialties,
    findings: kb.reduce((n, c) => n + c.findings.length, 0),
    labs: kb.reduce((n, c) => n + c.labs.length, 0),
    vignetteTemplates: count(VIGNETTE_TEMPLATES),
    questionTemplates: count(QUESTION_TEMPLATES),
  };
}

export function formatStats(s: KbStats): string {
  const lines = [`${s.conditions} conditions in ${s.specialties.filter((x) => x.conditions > 0).length} specialties, ${s.findings} findings, ${s.labs} tests`, ''];
  const w = Math.max(...s.specialties.map((x) => x.name.length));
  lines.push(`${'specialty'.padEnd(w)}  conditions  train combos  held-out combos`);
  for (const x of s.specialties) {
    lines.push(`${x.name.padEnd(w)}  ${String(x.conditions).padStart(10)}  ${String(x.trainCombos).padStart(12)}  ${String(x.heldOutCombos).padStart(15)}`);
  }
  lines.push('', `templates: vignettes ${s.vignetteTemplates.train} train + ${s.vignetteTemplates.heldOut} held out, ` +
    `question stems ${s.questionTemplates.train} train + ${s.questionTemplates.heldOut} held out`);
  return lines.join('\n');
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return n;
}

function specialtyList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = list.filter((s) => !(SPECIALTIES as readonly string[]).includes(s));
  if (unknown.length) throw new InvalidArgumentError(`unknown specialt${unknown.length === 1 ? 'y' : 'ies'} ${unknown.join(', ')}; choose from: ${SPECIALTIES.join(', ')}`);
  return list;
}

export function registerKb(program: Command): void {
  const kb = program.command('kb').description('the built-in medical knowledge-base benchmark');
  kb.command('generate')
    .description('write mcq.json, verifiable.json, sft.json and eval.json (held-out sets) into a folder')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'seed of every random choice', nonNegativeInt, 0)
    .option('--train-size <n>', 'training items (MCQ, verifiable and SFT alike)', nonNegativeInt, 2000)
    .option('--eval-size <n>', 'items per held-out evaluation source', nonNegativeInt, 200)
    .addOption(new Option('--cot <style>', 'Complex_CoT style').choices(['full', 'brief']).default('full'))
    .option('--specialties <list>', `comma-separated subset of: ${SPECIALTIES.join(', ')}`, specialtyList)
    .action((opts: KbGenerateArgs) => {
      if (existsSync(opts.out) && !statSync(opts.out).isDirectory()) {
        throw new UserError(`${opts.out}: exists and is not a folder (--out): give a folder for mcq.json, verifiable.json, sft.json and eval.json`);
      }
      const s = kbGenerate(opts);
      const evals = Object.entries(s.eval).map(([k, n]) => `${k} ${n}`).join(', ');
      console.log(`wrote ${opts.out}: ${s.train} training items (mcq, verifiable, sft), eval: ${evals} in ${s.seconds.toFixed(2)} s`);
    });
  kb.command('stats')
    .description('summarize the knowledge base: conditions per specialty, finding combinations, templates')
    .option('--json', 'print JSON', false)
    .action((opts: { json: boolean }) => {
      const s = kbStats();
      console.log(opts.json ? JSON.stringify(s, null, 2) : formatStats(s));
    });
}
