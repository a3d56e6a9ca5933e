/**
 * --address, --namespace and --profile on every command that talks to Temporal. They win
 * over TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_PROFILE and temporal.toml
 * (runtime/connection.ts). Loads no Temporal package: the help stays fast.
 */
import type { Command } from 'commander';
import type { ConnectionFlags } from '../runtime/connection.ts';

/** The commands (and every subcommand of them) that connect to Temporal. */
export const TEMPORAL_COMMANDS = ['run', 'start', 'status', 'list', 'cancel', 'pause', 'resume', 'logs', 'worker', 'schedule'];

/** What the command being run was given; set before its action runs. */
export const connectionFlags: ConnectionFlags = {};

function addOptions(cmd: Command): void {
  if (cmd.commands.length) {
    for (const sub of cmd.commands) addOptions(sub);
    return;
  }
  cmd
    .option('--address <host:port>', 'Temporal server (default: TEMPORAL_ADDRESS, the temporal.toml profile, else the embedded server)')
    .option('--namespace <name>', 'Temporal namespace (default: TEMPORAL_NAMESPACE, the temporal.toml profile, else "default")')
    .option('--profile <name>', 'profile of temporal.toml (TEMPORAL_CONFIG_FILE) to read (default: TEMPORAL_PROFILE, else "default")');
}

/**
 * Adds the options to the Temporal commands of `program` (to `program` itself when it has
 * no subcommands) and records them before each action.
 */
export function installConnectionOptions(program: Command): void {
  if (!program.commands.length) addOptions(program);
  for (const cmd of program.commands) if (TEMPORAL_COMMANDS.includes(cmd.name())) addOptions(cmd);
  program.hook('preAction', (_program, action) => {
    const o = action.opts<ConnectionFlags>();
    connectionFlags.address = o.address;
    connectionFlags.namespace = o.namespace;
    connectionFlags.profile = o.profile;
  });
}

/** The flags again, as arguments for a child `doctor-agent` process. */
export function connectionArgs(flags: ConnectionFlags): string[] {
  return [
    ...(flags.address ? ['--address', flags.address] : []),
    ...(flags.namespace ? ['--namespace', flags.namespace] : []),
    ...(flags.profile ? ['--profile', flags.profile] : []),
  ];
}
