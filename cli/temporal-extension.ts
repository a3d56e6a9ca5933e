/**
 * The `temporal` CLI extensions: `temporal pipeline start|run|status|list|logs|cancel` and
 * `temporal workflow pipeline --pipeline FILE`. The temporal CLI runs `temporal-<name>` from
 * PATH with the arguments after the name, preceded by the global and connection flags given
 * before it (`temporal --profile lab pipeline start ...` runs
 * `temporal-pipeline --profile lab start ...`), and passes the environment on unchanged.
 * Those flags are read here the way temporal reads them: --address, --namespace (-n) and
 * --profile as doctor-agent's own flags, the TLS, API-key, config-file and gRPC-metadata
 * flags as the TEMPORAL_* variables they stand for (a flag wins over the variable, which
 * wins over temporal.toml), display flags ignored, and the rest refused with a reason.
 */
import { Command } from 'commander';
import { UserError } from '../contract/errors.ts';
import { registerCancel } from './commands/cancel.ts';
import { registerList } from './commands/list.ts';
import { registerLogs } from './commands/logs.ts';
import { registerRun } from './commands/run.ts';
import { registerStatus } from './commands/status.ts';
import { registerStart, startPipeline, withStartOptions, type StartOptions } from './commands/start.ts';
import { installConnectionOptions } from './connection-flags.ts';
import { reportError } from './report-error.ts';

/** Flags with a value that stand for a TEMPORAL_* variable. */
const VALUE_TO_ENV: Record<string, string> = {
  '--config-file': 'TEMPORAL_CONFIG_FILE',
  '--api-key': 'TEMPORAL_API_KEY',
  '--tls-ca-path': 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  '--tls-ca-data': 'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  '--tls-cert-path': 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  '--tls-cert-data': 'TEMPORAL_TLS_CLIENT_CERT_DATA',
  '--tls-key-path': 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  '--tls-key-data': 'TEMPORAL_TLS_CLIENT_KEY_DATA',
  '--tls-server-name': 'TEMPORAL_TLS_SERVER_NAME',
};
/** Boolean flags that stand for a TEMPORAL_* variable. */
const BOOL_TO_ENV: Record<string, string> = {
  '--tls': 'TEMPORAL_TLS',
  '--tls-disable-host-verification': 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
};
/** doctor-agent's own connection flags, under temporal's spellings. */
const OWN: Record<string, string> = { '--address': '--address', '--namespace': '--namespace', '-n': '--namespace', '--profile': '--profile' };
/** Display and timing flags of temporal that change nothing here. */
const IGNORED_VALUE = new Set(['--color', '--log-level', '--log-format', '--time-format', '--command-timeout', '--client-connect-timeout']);
const IGNORED_BOOL = new Set(['--no-json-shorthand-payloads']);
/** Flags of temporal with no counterpart here, and what to do instead. */
const REFUSED_VALUE: Record<string, string> = {
  '--env': 'temporal\'s environments (`temporal env`) are not read here: use a temporal.toml profile (--profile) or TEMPORAL_* variables',
  '--env-file': 'temporal\'s environments (`temporal env`) are not read here: use a temporal.toml profile (--profile, --config-file) or TEMPORAL_* variables',
  '--codec-endpoint': 'runs carry plain JSON payloads: a codec server is not used',
  '--codec-auth': 'runs carry plain JSON payloads: a codec server is not used',
  '--codec-header': 'runs carry plain JSON payloads: a codec server is not used',
  '--client-authority': 'not supported: set tls.server_name in the profile or --tls-server-name',
  '--identity': 'not supported: the client identity is the default one',
};
const REFUSED_BOOL: Record<string, string> = {
  '--disable-config-file': 'not supported: point TEMPORAL_CONFIG_FILE (or --config-file) at the file to read, or set TEMPORAL_ADDRESS',
  '--disable-config-env': 'not supported: unset the TEMPORAL_* variables instead',
};

export interface ExtensionArgs {
  /** The arguments for the extension's own command line. */
  args: string[];
  /** TEMPORAL_* variables the flags stand for. */
  env: Record<string, string>;
}

function boolValue(flag: string, v: string | undefined): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new UserError(`${flag}=${v}: expected true or false`);
}

/**
 * Reads temporal's flags out of an extension's arguments, wherever they are. With
 * `subcommands`, doctor-agent's connection flags given before the subcommand (where
 * temporal puts the flags typed before the extension's name) move after it.
 */
export function translateTemporalArgs(argv: string[], opts: { subcommands: boolean }): ExtensionArgs {
  const env: Record<string, string> = {};
  const before: string[] = [];
  const after: string[] = [];
  let sub: string | undefined;
  const out = () => (opts.subcommands && sub === undefined ? before : after);
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') {
      after.push(...argv.slice(i));
      break;
    }
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const flag = eq > 0 ? token.slice(0, eq) : token;
    const inline = eq > 0 ? token.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined) throw new UserError(`${flag} needs a value`);
      i++;
      return v;
    };
    if (flag in OWN) out().push(OWN[flag], value());
    else if (flag in VALUE_TO_ENV) env[VALUE_TO_ENV[flag]] = value();
    else if (flag in BOOL_TO_ENV) env[BOOL_TO_ENV[flag]] = String(boolValue(flag, inline));
    else if (flag === '--grpc-meta') {
      const kv = value();
      const at = kv.indexOf('=');
      if (at <= 0) throw new UserError(`--grpc-meta ${kv}: expected KEY=VALUE`);
      env[`TEMPORAL_GRPC_META_${kv.slice(0, at).toLowerCase()}`] = kv.slice(at + 1);
    } else if (IGNORED_VALUE.has(flag)) value();
    else if (IGNORED_BOOL.has(flag)) boolValue(flag, inline);
    else if (flag === '--output' || flag === '-o') {
      const v = value();
      if (v !== 'text') throw new UserError(`${flag} ${v}: only text output here (status takes --json)`);
    } else if (flag in REFUSED_VALUE) throw new UserError(`${flag}: ${REFUSED_VALUE[flag]}`);
    else if (flag in REFUSED_BOOL) throw new UserError(`${flag}: ${REFUSED_BOOL[flag]}`);
    else if (opts.subcommands && sub === undefined && !token.startsWith('-')) {
      sub = token;
      after.push(token);
    } else after.push(token);
  }
  // Flags before the subcommand follow it (each subcommand takes them); without one, they stay.
  return { args: sub === undefined ? [...before, ...after] : [...after, ...before], env };
}

const TEMPORAL_FLAGS_HELP = `
The temporal CLI's flags are read as temporal reads them, before or after the command:
  --address, --namespace (-n), --profile           as above
  --config-file, --api-key, --tls, --tls-ca-path, --tls-ca-data, --tls-cert-path,
  --tls-cert-data, --tls-key-path, --tls-key-data, --tls-server-name,
  --tls-disable-host-verification, --grpc-meta K=V  as their TEMPORAL_* variables
With no address configured, the embedded server of this project (.doctor-agent/temporal,
127.0.0.1:7233 when that port is free) is used and started if needed.`;

/** `temporal pipeline`: start, run (live), status, list, logs, cancel. */
export function buildPipelineExtension(): Command {
  const program = new Command('temporal pipeline')
    .description('Doctor-Agent pipelines on Temporal: compile a pipeline YAML and start it, follow it, read it back.')
    .showHelpAfterError('(run with --help for usage)');
  for (const register of [registerStart, registerRun, registerStatus, registerList, registerLogs, registerCancel]) register(program);
  installConnectionOptions(program);
  for (const cmd of program.commands) if (cmd.options.some((o) => o.long === '--address')) cmd.addHelpText('after', TEMPORAL_FLAGS_HELP);
  return program;
}

/** `temporal workflow pipeline --pipeline FILE`: what `temporal pipeline start` does. */
export function buildWorkflowPipelineExtension(): Command {
  const program = withStartOptions(
    new Command('temporal workflow pipeline')
      .description('compile a pipeline YAML and start it as a workflow run (type "pipeline", task queue "doctor-agent"); prints the run id')
      .showHelpAfterError('(run with --help for usage)'),
  ).action((o: StartOptions) => startPipeline(o));
  installConnectionOptions(program);
  program.addHelpText('after', TEMPORAL_FLAGS_HELP);
  return program;
}

/** Runs an extension on the arguments temporal gave it; user errors are one line, exit 1. */
export async function runExtension(build: () => Command, argv: string[], subcommands: boolean): Promise<void> {
  try {
    const { args, env } = translateTemporalArgs(argv, { subcommands });
    Object.assign(process.env, env);
    await build().parseAsync(args, { from: 'user' });
  } catch (err) {
    reportError(err);
  }
}
