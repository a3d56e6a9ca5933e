/** `doctor-agent tokenizer train`: learns a byte-level BPE tokenizer from data files. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { readCorpus } from '../../data/tokenizer-corpus.ts';
import { trainTokenizer, saveTrainedTokenizer } from '../../engine/tokenizer-train.ts';

export interface TokenizerTrainArgs {
  data: string[];
  vocabSize: number;
  out: string;
  minFrequency?: number;
  force?: boolean;
}

export interface TokenizerTrainSummary {
  out: string;
  vocabSize: number;
  merges: number;
  texts: number;
  words: number;
  seconds: number;
}

/** Trains and writes the tokenizer folder; returns what was made. */
export function tokenizerTrain(args: TokenizerTrainArgs, log: (line: string) => void = () => {}): TokenizerTrainSummary {
  const target = join(args.out, 'tokenizer.json');
  if (existsSync(target) && !args.force) {
    throw new Error(`${target} already exists — choose another --out, or pass --force to replace it`);
  }
  const started = performance.now();
  const texts = readCorpus(args.data);
  log(`read ${texts.length} texts from ${args.data.length} file(s)`);
  const trained = trainTokenizer(texts, {
    vocabSize: args.vocabSize,
    minFrequency: args.minFrequency,
    onProgress: (merges, tokens) => {
      if (merges % 1000 === 0) log(`  ${merges} merges, ${tokens} tokens`);
    },
  });
  saveTrainedTokenizer(trained, args.out);
  const seconds = (performance.now() - started) / 1000;
  if (trained.stats.vocabSize < args.vocabSize) {
    log(`note: the data only supports ${trained.stats.vocabSize} tokens (pairs seen fewer than ` +
      `${args.minFrequency ?? 2} times are not merged); add text for a larger vocabulary`);
  }
  return { out: args.out, vocabSize: trained.stats.vocabSize, merges: trained.stats.merges, texts: texts.length, words: trained.stats.words, seconds };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function registerTokenizerCommands(program: Command): void {
  const tokenizer = program.command('tokenizer').description('tokenizer tools');
  tokenizer
    .command('train')
    .description('train a byte-level BPE tokenizer (Qwen2-style, ChatML template) and write tokenizer.json + tokenizer_config.json')
    .requiredOption('--data <files...>', 'training data: .json / .jsonl in the project\'s formats, or plain text')
    .requiredOption('--vocab-size <n>', 'vocabulary size, special tokens included', positiveInt)
    .requiredOption('--out <dir>', 'output folder')
    .option('--min-frequency <n>', 'do not merge pairs seen fewer times', positiveInt, 2)
    .option('--force', 'replace an existing tokenizer in --out', false)
    .action((opts: TokenizerTrainArgs) => {
      let s: TokenizerTrainSummary;
      try {
        s = tokenizerTrain(opts, (line) => process.stderr.write(line + '\n'));
      } catch (err) {
        // Bad files, bad JSON or a bad size: the message says where and what to do; no stack trace.
        if (err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError)) (err as { user?: boolean }).user = true;
        throw err;
      }
      console.log(`wrote ${s.out}/tokenizer.json and tokenizer_config.json: vocab ${s.vocabSize} (${s.merges} merges) ` +
        `from ${s.words} words in ${s.seconds.toFixed(1)} s`);
    });
}
