/**
 * Temporal connection settings as the `temporal` CLI reads them: a temporal.toml profile,
 * overridden by TEMPORAL_* variables, overridden by --address/--namespace/--profile; TLS
 * certificates loaded from their files, an API key turning TLS on, and plain errors for a
 * missing profile or file or a broken TOML file. The environment is passed in, so the
 * user's own temporal.toml never takes part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../contract/errors.ts';
import { loadConnectionSettings } from '../../runtime/connection.ts';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'conn-settings-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const TOML = (dir: string) => `
[profile.default]
address = "default.example:7233"

[profile.lab]
address = "lab.example:7233"
namespace = "research"

[profile.secure]
address = "secure.example:7233"
namespace = "prod"
[profile.secure.tls]
client_cert_path = "${join(dir, 'client.pem')}"
client_key_path = "${join(dir, 'client.key')}"
server_ca_cert_path = "${join(dir, 'ca.pem')}"
server_name = "temporal.internal"
[profile.secure.grpc_meta]
x-team = "medical"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "secret-key"
`;

function setup(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t);
  const file = join(dir, 'temporal.toml');
  writeFileSync(file, TOML(dir));
  writeFileSync(join(dir, 'client.pem'), 'CLIENT CERT');
  writeFileSync(join(dir, 'client.key'), 'CLIENT KEY');
  writeFileSync(join(dir, 'ca.pem'), 'CA CERT');
  return { dir, file, env: { TEMPORAL_CONFIG_FILE: file } as NodeJS.ProcessEnv };
}

test('no address anywhere: the embedded server, namespace "default"', () => {
  const s = loadConnectionSettings({}, {});
  assert.equal(s.address, undefined);
  assert.equal(s.namespace, 'default');
  assert.equal(s.tls, undefined);
  assert.match(s.from.address, /embedded server/);
});

test('the profile, then TEMPORAL_* variables, then flags; each setting says where it came from', (t) => {
  const { file, env } = setup(t);
  const lab = loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'lab' });
  assert.equal(lab.address, 'lab.example:7233');
  assert.equal(lab.namespace, 'research');
  assert.equal(lab.from.address, `profile "lab" in ${file}`);
  assert.equal(lab.from.namespace, `profile "lab" in ${file}`);

  const envWins = loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'lab', TEMPORAL_NAMESPACE: 'staging' });
  assert.equal(envWins.address, 'lab.example:7233');
  assert.equal(envWins.namespace, 'staging');
  assert.equal(envWins.from.namespace, 'TEMPORAL_NAMESPACE');

  const flagsWin = loadConnectionSettings(
    { address: '10.0.0.1:7233', namespace: 'night', profile: 'lab' },
    { ...env, TEMPORAL_PROFILE: 'default', TEMPORAL_ADDRESS: 'env.example:7233', TEMPORAL_NAMESPACE: 'staging' },
  );
  assert.deepEqual([flagsWin.address, flagsWin.namespace], ['10.0.0.1:7233', 'night']);
  assert.deepEqual(flagsWin.from, { address: '--address', namespace: '--namespace' });

  // --profile picks the profile over TEMPORAL_PROFILE; the default profile is used without either.
  assert.equal(loadConnectionSettings({ profile: 'lab' }, { ...env, TEMPORAL_PROFILE: 'cloud' }).address, 'lab.example:7233');
  const dflt = loadConnectionSettings({}, env);
  assert.equal(dflt.address, 'default.example:7233');
  assert.equal(dflt.namespace, 'default');
  assert.equal(dflt.from.namespace, 'the default');
});

test('empty variables count as unset', (t) => {
  const { env } = setup(t);
  const s = loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'lab', TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: ' ' });
  assert.equal(s.address, 'lab.example:7233');
  assert.equal(s.namespace, 'research');
  assert.equal(loadConnectionSettings({}, { TEMPORAL_ADDRESS: '' }).address, undefined);
});

test('TLS from the profile: client certificate pair, server CA, server name and gRPC metadata', (t) => {
  const { env } = setup(t);
  const s = loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'secure' });
  assert.ok(s.tls && typeof s.tls === 'object', `tls: ${String(s.tls)}`);
  assert.equal(Buffer.from(s.tls.clientCertPair!.crt).toString(), 'CLIENT CERT');
  assert.equal(Buffer.from(s.tls.clientCertPair!.key).toString(), 'CLIENT KEY');
  assert.equal(Buffer.from(s.tls.serverRootCACertificate!).toString(), 'CA CERT');
  assert.equal(s.tls.serverNameOverride, 'temporal.internal');
  assert.deepEqual(s.metadata, { 'x-team': 'medical' });
  assert.equal(s.apiKey, undefined);

  // TEMPORAL_TLS=false turns TLS off whatever the profile says.
  assert.equal(loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'secure', TEMPORAL_TLS: 'false' }).tls, false);
});

test('TLS from TEMPORAL_TLS_* variables alone, without any file', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.pem'), 'ENV CERT');
  writeFileSync(join(dir, 'c.key'), 'ENV KEY');
  const s = loadConnectionSettings({}, {
    TEMPORAL_ADDRESS: 'remote.example:7233',
    TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'c.pem'),
    TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'c.key'),
    TEMPORAL_TLS_SERVER_NAME: 'remote.internal',
  });
  assert.ok(s.tls && typeof s.tls === 'object');
  assert.equal(Buffer.from(s.tls.clientCertPair!.crt).toString(), 'ENV CERT');
  assert.equal(Buffer.from(s.tls.clientCertPair!.key).toString(), readFileSync(join(dir, 'c.key'), 'utf8'));
  assert.equal(s.tls.serverNameOverride, 'remote.internal');
  // TEMPORAL_TLS=true alone: TLS with the system's roots and no client certificate.
  const plain = loadConnectionSettings({}, { TEMPORAL_ADDRESS: 'remote.example:7233', TEMPORAL_TLS: 'true' }).tls;
  assert.ok(plain, 'TLS is on');
  assert.equal(typeof plain === 'object' ? plain.clientCertPair : undefined, undefined);
});

test('an API key turns TLS on (profile or TEMPORAL_API_KEY)', (t) => {
  const { env } = setup(t);
  const cloud = loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'cloud' });
  assert.equal(cloud.apiKey, 'secret-key');
  assert.equal(cloud.tls, true);
  assert.equal(cloud.namespace, 'ns.acct');
  const fromEnv = loadConnectionSettings({}, { TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k2' });
  assert.deepEqual([fromEnv.apiKey, fromEnv.tls], ['k2', true]);
});

test('a missing profile, a missing TEMPORAL_CONFIG_FILE and a broken file are user errors saying where', (t) => {
  const { dir, file, env } = setup(t);
  assert.throws(() => loadConnectionSettings({}, { ...env, TEMPORAL_PROFILE: 'nope' }), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, new RegExp(`TEMPORAL_PROFILE: no profile "nope" in ${file.replace(/[.]/g, '\\.')}`));
    return true;
  });
  assert.throws(() => loadConnectionSettings({ profile: 'gone' }, env), /^UserError: --profile: no profile "gone"/);
  assert.throws(() => loadConnectionSettings({}, { TEMPORAL_CONFIG_FILE: join(dir, 'absent.toml') }),
    (err: Error) => err instanceof UserError && /absent\.toml: no such file/.test(err.message));
  const broken = join(dir, 'broken.toml');
  writeFileSync(broken, '[profile.a]\naddress = "unterminated\nnamespace = "x"\n');
  assert.throws(() => loadConnectionSettings({}, { TEMPORAL_CONFIG_FILE: broken }),
    (err: Error) => err instanceof UserError && err.message.startsWith(`${broken}:2:`));
});

test('a temporal.toml without any profile: the variables alone; asking for a profile there is an error', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'temporal.toml');
  writeFileSync(file, '# nothing configured yet\n');
  const s = loadConnectionSettings({}, { TEMPORAL_CONFIG_FILE: file, TEMPORAL_NAMESPACE: 'lab' });
  assert.deepEqual([s.address, s.namespace, s.from.namespace], [undefined, 'lab', 'TEMPORAL_NAMESPACE']);
  assert.throws(() => loadConnectionSettings({ profile: 'lab' }, { TEMPORAL_CONFIG_FILE: file }),
    (err: Error) => err instanceof UserError && err.message.startsWith(`--profile: no profile "lab" in ${file}`));
});
