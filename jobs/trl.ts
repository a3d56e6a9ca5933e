/**
 * The `trl` runner of train.sft, rl.grpo and rl.ppo: prepares what Python needs in the
 * project's own terms, then runs python/doctor_agent_trl (Hugging Face TRL on PyTorch) and
 * relays its JSON-lines messages.
 *
 * Prepared here, so both runners read the data the same way and report bad records the same way:
 *   - the data: SFT items as prompt/completion conversations (the assistant turn is the
 *     "## Thinking / ## Final Response" target), verifiable problems as a user prompt with its
 *     reference answer; written as JSON Lines in the step folder;
 *   - the tokenizer: the one given, else the model's, else (a preset) one trained on the data,
 *     as the built-in trainer does.
 * Python runs in this job's process group, so cancelling the step (SIGTERM, then SIGKILL to the
 * group) reaches it and the processes `accelerate launch` starts.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic, writeJsonAtomic } from '../common/fs.ts';
import { findPython, PROJECT_ROOT, pythonProcessEnv } from '../common/python.ts';
import { parseParams } from '../contract/params.ts';
import { parseJobLine, type JobMessage } from '../contract/protocol.ts';
import { send, type JobContext } from '../contract/job.ts';
import { UserError } from '../contract/errors.ts';
import { sftTarget } from '../data/formats.ts';
import { loadItems } from '../data/loaders.ts';
import { SftParams } from '../dsl/kinds/sft.ts';
import { GrpoParams } from '../dsl/kinds/grpo.ts';
import { PpoParams } from '../dsl/kinds/ppo.ts';
import { checkPolicyFolder, checkStartModel, startTokenizer } from '../train/start.ts';

/** What the Python job reads besides the step's params (python/doctor_agent_trl). */
interface Prepared {
  /** JSON Lines of prompt/completion conversations (SFT) or prompt + reference (RL). */
  data: string;
  /** The tokenizer folder. */
  tokenizer: string;
}

interface AccelerateParams {
  num_processes: number;
  deepspeed_config?: string;
  config_file?: string;
  mixed_precision?: 'no' | 'fp16' | 'bf16';
}

function writeJsonl(path: string, rows: unknown[]): string {
  writeFileAtomic(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

function prepareSft(ctx: JobContext): { params: Record<string, unknown>; prepared: Prepared; accelerate?: AccelerateParams } {
  const p = parseParams(SftParams, ctx.params, 'train.sft');
  checkStartModel(p.model);
  const items = loadItems(p.data, 'sft').items;
  if (items.length === 0) throw new UserError(`${p.data}: no SFT items`, { where: 'with.data' });
  const tokenizer = startTokenizer({ model: p.model, tokenizer: p.tokenizer, vocabSize: p.tokenizer_vocab_size, data: p.data, workDir: ctx.outDir });
  const data = writeJsonl(join(ctx.outDir, 'trl-data.jsonl'), items.map((it) => ({
    prompt: [{ role: 'user', content: it.Question }],
    completion: [{ role: 'assistant', content: sftTarget(it) }],
  })));
  return { params: p, prepared: { data, tokenizer }, accelerate: p.accelerate };
}

function prepareRl(ctx: JobContext, kind: 'rl.grpo' | 'rl.ppo'): { params: Record<string, unknown>; prepared: Prepared; accelerate?: AccelerateParams } {
  const p = kind === 'rl.grpo' ? parseParams(GrpoParams, ctx.params, kind) : parseParams(PpoParams, ctx.params, kind);
  checkPolicyFolder(p.policy);
  const items = loadItems(p.data, 'verifiable').items;
  if (items.length === 0) throw new UserError(`${p.data}: no verifiable problems`, { where: 'with.data' });
  const data = writeJsonl(join(ctx.outDir, 'trl-data.jsonl'), items.map((it) => ({
    prompt: [{ role: 'user', content: it['Open-ended Verifiable Question'] }],
    reference: it['Ground-True Answer'],
    question: it['Open-ended Verifiable Question'],
  })));
  return { params: p, prepared: { data, tokenizer: p.policy }, accelerate: (p as { accelerate?: AccelerateParams }).accelerate };
}

/**
 * The command line: the module alone, or under `accelerate launch` when asked for. Several
 * processes without DeepSpeed use accelerate's torchrun launcher (`--multi_gpu`); on a machine
 * without GPUs the runner then trains on the CPU with gloo between the processes.
 */
export function launchArgs(specPath: string, a: AccelerateParams | undefined): string[] {
  const job = ['-m', 'doctor_agent_trl', specPath];
  if (!a || (a.num_processes === 1 && !a.deepspeed_config && !a.config_file && !a.mixed_precision)) return job;
  const args = ['-m', 'accelerate.commands.launch', '--num_processes', String(a.num_processes), '--num_machines', '1', '--dynamo_backend', 'no'];
  if (a.config_file) args.push('--config_file', a.config_file);
  if (a.deepspeed_config) args.push('--use_deepspeed', '--deepspeed_config_file', a.deepspeed_config);
  else if (a.num_processes > 1) args.push('--multi_gpu');
  args.push('--mixed_precision', a.mixed_precision ?? 'no');
  return [...args, ...job];
}

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const kind = ctx.spec.kind;
  const env = findPython();
  if (!env) {
    throw new UserError('runner: trl needs a Python environment with PyTorch and TRL, and none is set up', {
      hint: 'run `doctor-agent setup torch` (creates .venv/ in the project), or set DOCTOR_AGENT_PYTHON to a Python that has the packages of python/requirements.lock',
    });
  }
  let job: ReturnType<typeof prepareSft>;
  if (kind === 'train.sft') job = prepareSft(ctx);
  else if (kind === 'rl.grpo' || kind === 'rl.ppo') job = prepareRl(ctx, kind);
  else throw new UserError(`runner: trl has no step kind "${kind}" (it runs train.sft, rl.grpo and rl.ppo)`);

  const specPath = join(ctx.outDir, 'trl-job.json');
  writeJsonAtomic(specPath, { ...ctx.spec, params: job.params, prepared: job.prepared, projectRoot: PROJECT_ROOT });
  const args = launchArgs(specPath, job.accelerate);
  ctx.log(`TRL runner: ${env.python} (from ${env.source}) ${args.join(' ')}`);
  return relay(env.python, args, ctx);
}

/** Runs Python, forwards its protocol messages, and returns its outputs or throws its error. */
function relay(python: string, args: string[], ctx: JobContext): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { env: pythonProcessEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
    let outputs: Record<string, unknown> | undefined;
    let failure: Extract<JobMessage, { type: 'error' }> | undefined;
    const onAbort = () => child.kill('SIGTERM');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const msg = parseJobLine(line);
      if (!msg) process.stdout.write(line + '\n');
      else if (msg.type === 'result') outputs = msg.outputs;
      else if (msg.type === 'error') failure = msg;
      else send(msg);
    });
    const closed = new Promise((r) => lines.once('close', r));
    child.once('error', (err) => reject(new UserError(`cannot start ${python}: ${err.message}`, {
      hint: 'run `doctor-agent setup torch`, or point DOCTOR_AGENT_PYTHON at an existing Python',
    })));
    child.once('exit', (code, signal) => {
      void closed.then(() => {
        ctx.signal.removeEventListener('abort', onAbort);
        if (failure) {
          reject(failure.user ? new UserError(failure.message, { where: failure.where, hint: failure.hint }) : new Error(`TRL runner: ${failure.message}`));
        } else if (code === 0 && outputs) resolvePromise(outputs);
        else if (ctx.signal.aborted) reject(new Error('TRL runner stopped on request (its last checkpoint is kept)'));
        else reject(new Error(`TRL runner exited with ${signal ?? `code ${code}`} without a result (see the log above)`));
      });
    });
  });
}
