/**
 * Where to find Temporal, read the way the `temporal` CLI reads it (through
 * @temporalio/envconfig): a profile of temporal.toml (TEMPORAL_CONFIG_FILE, else the
 * user's config folder; TEMPORAL_PROFILE, else "default"), overridden by TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* and TEMPORAL_GRPC_META_*, themselves
 * overridden by the command line's --address, --namespace and --profile. Empty variables
 * count as unset. No address anywhere means the embedded dev server.
 */
import { existsSync } from 'node:fs';
import { platform } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';
import { UserError } from '../contract/errors.ts';

export const DEFAULT_NAMESPACE = 'default';

/** What the command line says (each one wins over the environment and the file). */
export interface ConnectionFlags {
  address?: string;
  namespace?: string;
  profile?: string;
}

export interface ConnectionSettings {
  /** Undefined: use the embedded dev server. */
  address?: string;
  namespace: string;
  apiKey?: string;
  /** true: TLS with the system's roots; an object: certificates, server name; false or undefined: plain. */
  tls?: TLSConfig | boolean;
  metadata?: Record<string, string>;
  /** Where the address and the namespace came from, e.g. `TEMPORAL_ADDRESS`, `profile "lab" in /x/temporal.toml`. */
  from: { address: string; namespace: string };
}

/** The config file envconfig reads: TEMPORAL_CONFIG_FILE, else temporal.toml in the user's config folder. */
export function configFilePath(env: Record<string, string>): string | undefined {
  if (env.TEMPORAL_CONFIG_FILE) return env.TEMPORAL_CONFIG_FILE;
  const os = platform();
  let dir: string | undefined;
  if (os === 'win32') dir = env.APPDATA;
  else if (os === 'darwin') dir = env.HOME ? join(env.HOME, 'Library', 'Application Support') : undefined;
  else dir = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : env.XDG_CONFIG_HOME ? undefined : env.HOME ? join(env.HOME, '.config') : undefined;
  return dir ? join(dir, 'temporalio', 'temporal.toml') : undefined;
}

/** The environment as envconfig should see it: strings only, and TEMPORAL_* variables set to '' left out. */
function cleanEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (k.startsWith('TEMPORAL_') && !k.startsWith('TEMPORAL_GRPC_META_') && v.trim() === '') continue;
    out[k] = k === 'TEMPORAL_ADDRESS' || k === 'TEMPORAL_NAMESPACE' || k === 'TEMPORAL_PROFILE' ? v.trim() : v;
  }
  return out;
}

/** Reads the profile (file, then environment), applies the flags, and says where each setting came from. */
export function loadConnectionSettings(flags: ConnectionFlags = {}, processEnv: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const env = cleanEnv(processEnv);
  const file = configFilePath(env);
  if (env.TEMPORAL_CONFIG_FILE && !existsSync(env.TEMPORAL_CONFIG_FILE)) {
    throw new UserError(`TEMPORAL_CONFIG_FILE=${env.TEMPORAL_CONFIG_FILE}: no such file (unset it, or point it at a temporal.toml)`);
  }
  const profileName = flags.profile || env.TEMPORAL_PROFILE;
  const profileFrom = flags.profile ? '--profile' : 'TEMPORAL_PROFILE';
  let noProfiles = false;
  const load = (disableEnv: boolean): ClientConfigProfile => {
    if (noProfiles) return disableEnv ? {} : loadClientConfigProfile({ disableFile: true, overrideEnvVars: env });
    try {
      return loadClientConfigProfile({ profile: profileName, disableEnv, overrideEnvVars: env });
    } catch (err) {
      // envconfig 1.24 fails with a TypeError on a file without any [profile.*] table (e.g. comments only).
      if (err instanceof TypeError && !profileName) {
        noProfiles = true;
        return load(disableEnv);
      }
      throw configError(err as Error & { line?: number; column?: number }, file, profileName, profileFrom);
    }
  };
  const fromFile = load(true);
  const profile = load(false);
  const where = `profile "${profileName ?? 'default'}" in ${file}`;
  const address = flags.address?.trim() || profile.address?.trim() || undefined;
  const namespace = flags.namespace?.trim() || profile.namespace?.trim() || DEFAULT_NAMESPACE;
  const connect = toClientOptions({ ...profile, address, namespace });
  const { tls, apiKey, metadata } = connect.connectionOptions;
  return {
    address, namespace, apiKey,
    tls: tls ?? undefined,
    metadata: metadata && Object.keys(metadata).length ? (metadata as Record<string, string>) : undefined,
    from: {
      address: flags.address?.trim() ? '--address'
        : env.TEMPORAL_ADDRESS ? 'TEMPORAL_ADDRESS'
          : fromFile.address ? where : 'the embedded server (no address configured)',
      namespace: flags.namespace?.trim() ? '--namespace'
        : env.TEMPORAL_NAMESPACE ? 'TEMPORAL_NAMESPACE'
          : fromFile.namespace ? where : 'the default',
    },
  };
}

function configError(err: Error & { line?: number; column?: number }, file: string | undefined, profile: string | undefined, profileFrom: string): UserError {
  if (/^Profile '.*' not found/.test(err.message) || err instanceof TypeError) {
    return new UserError(`${profileFrom}: no profile "${profile}" in ${file && existsSync(file) ? file : 'any temporal.toml (none was found)'}; add [profile.${profile}] there or choose another profile`);
  }
  if (err.line !== undefined) {
    const [first, ...frame] = err.message.replace(/^Invalid TOML document: /, '').split('\n');
    return new UserError(`${file}:${err.line}:${err.column ?? 0}: ${first}\n${frame.join('\n').trimEnd()}`);
  }
  return new UserError(`${file ?? 'temporal.toml'}: ${err.message}`);
}

/** "127.0.0.1:7233, namespace research (address from TEMPORAL_ADDRESS, namespace from --namespace)". */
export function describeTarget(address: string | undefined, s: ConnectionSettings): string {
  return `${address ?? 'the embedded server'}, namespace ${s.namespace} (address from ${s.from.address}, namespace from ${s.from.namespace})`;
}
