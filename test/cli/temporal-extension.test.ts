/**
 * The temporal CLI extensions' arguments: temporal puts the global and connection flags typed
 * before the extension's name in front of the extension's own arguments (checked against the
 * real binary in test/temporal/temporal-cli.test.ts); they are read here as temporal reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPipelineExtension, buildWorkflowPipelineExtension, translateTemporalArgs } from '../../cli/temporal-extension.ts';

const sub = (argv: string[]) => translateTemporalArgs(argv, { subcommands: true });

test('connection flags before the subcommand move after it; -n and --flag=value are read', () => {
  assert.deepEqual(sub(['--profile', 'lab', '--address', 'h:7233', 'start', '--pipeline', 'p.yaml', '--set', 'a=1']), {
    args: ['start', '--pipeline', 'p.yaml', '--set', 'a=1', '--profile', 'lab', '--address', 'h:7233'], env: {},
  });
  assert.deepEqual(sub(['-n', 'research', 'status', 'r1', '--json']).args, ['status', 'r1', '--json', '--namespace', 'research']);
  assert.deepEqual(sub(['--namespace=research', 'list']).args, ['list', '--namespace', 'research']);
  assert.deepEqual(sub(['start', '-n', 'x', '--pipeline', 'p.yaml']).args, ['start', '--namespace', 'x', '--pipeline', 'p.yaml']);
  // Without subcommands nothing moves.
  assert.deepEqual(translateTemporalArgs(['--address', 'h:1', '--pipeline', 'p.yaml'], { subcommands: false }).args,
    ['--address', 'h:1', '--pipeline', 'p.yaml']);
});

test('TLS, API key, config file and gRPC metadata flags become the TEMPORAL_* variables temporal reads', () => {
  const r = sub(['--tls', '--api-key', 'K', '--config-file=/c/temporal.toml', 'start', '--tls-cert-path', '/c/cert.pem',
    '--tls-key-path', '/c/key.pem', '--tls-ca-path', '/c/ca.pem', '--tls-server-name', 'srv', '--tls-disable-host-verification=false',
    '--grpc-meta', 'X-Team=med', '--pipeline', 'p.yaml']);
  assert.deepEqual(r.args, ['start', '--pipeline', 'p.yaml']);
  assert.deepEqual(r.env, {
    TEMPORAL_TLS: 'true', TEMPORAL_API_KEY: 'K', TEMPORAL_CONFIG_FILE: '/c/temporal.toml',
    TEMPORAL_TLS_CLIENT_CERT_PATH: '/c/cert.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: '/c/key.pem', TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/c/ca.pem',
    TEMPORAL_TLS_SERVER_NAME: 'srv', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'false', 'TEMPORAL_GRPC_META_x-team': 'med',
  });
  assert.deepEqual(sub(['--tls=false', 'list']).env, { TEMPORAL_TLS: 'false' });
});

test('display flags are ignored; flags with no counterpart are refused with what to do', () => {
  assert.deepEqual(sub(['--color', 'never', '--log-level', 'debug', '-o', 'text', '--no-json-shorthand-payloads', 'list']).args, ['list']);
  assert.throws(() => sub(['--env', 'prod', 'start']), /^UserError: --env: temporal's environments .* use a temporal\.toml profile \(--profile\)/);
  assert.throws(() => sub(['-o', 'json', 'status', 'r']), /-o json: only text output here \(status takes --json\)/);
  assert.throws(() => sub(['--disable-config-file', 'list']), /--disable-config-file: not supported/);
  assert.throws(() => sub(['--codec-endpoint', 'http://c', 'list']), /--codec-endpoint: runs carry plain JSON payloads/);
  assert.throws(() => sub(['--grpc-meta', 'novalue', 'list']), /--grpc-meta novalue: expected KEY=VALUE/);
  assert.throws(() => sub(['start', '--address']), /--address needs a value/);
  assert.throws(() => sub(['--tls=maybe', 'list']), /--tls=maybe: expected true or false/);
});

test('the extensions take start\'s options and the connection flags', () => {
  const p = buildPipelineExtension();
  assert.deepEqual(p.commands.map((c) => c.name()), ['start', 'run', 'status', 'list', 'logs', 'cancel']);
  const start = p.commands.find((c) => c.name() === 'start')!;
  const longs = (c: typeof start) => c.options.map((o) => o.long);
  for (const flag of ['--pipeline', '--set', '--params', '--no-cache', '--address', '--namespace', '--profile']) assert.ok(longs(start).includes(flag), flag);
  const w = buildWorkflowPipelineExtension();
  for (const flag of ['--pipeline', '--set', '--params', '--no-cache', '--address', '--namespace', '--profile']) assert.ok(longs(w).includes(flag), flag);
  assert.match(w.helpInformation(), /Usage: temporal workflow pipeline \[options\]/);
});

test('run takes FILE or --pipeline FILE, not two different ones', async () => {
  const parse = (args: string[]) => buildPipelineExtension().parseAsync(args, { from: 'user' });
  await assert.rejects(parse(['run']), /^UserError: no pipeline given: pass FILE or --pipeline FILE$/);
  await assert.rejects(parse(['run', 'a.yaml', '--pipeline', 'b.yaml']), /^UserError: two pipelines given: a\.yaml and --pipeline b\.yaml; give one$/);
  // Either form reaches the compiler, which names the missing file.
  await assert.rejects(parse(['run', '--pipeline', 'no-such.yaml']), /no-such\.yaml: file not found/);
});
