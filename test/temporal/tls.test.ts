/**
 * TLS settings reach both connections (the client's and the worker's): the dev server
 * speaks plain gRPC only, so a TLS proxy on 127.0.0.1 stands in front of it, with a CA,
 * a server certificate for the name "temporal.test" (so the profile's server_name is
 * needed) and a required client certificate, all made here with openssl. A temporal.toml
 * profile names the files; `doctor-agent run` succeeds through the proxy, and without the
 * client certificate the proxy refuses and the command says where it tried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../../runtime/temporal.ts';
import { startTestServer } from './helpers.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function openssl(dir: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA, and a server and a client certificate signed by it (P-256 keys). */
function makeCertificates(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=doctor-agent test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [name, cn, ext] of [
    ['server', 'temporal.test', 'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth'],
    ['client', 'doctor-agent-client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
    openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
}

test('a temporal.toml profile with TLS client certificates, CA and server name: client and worker connect through TLS', { skip: !hasOpenssl && 'openssl is not installed' }, async (t) => {
  const s = await startTestServer(t);
  const dir = s.store.root;
  makeCertificates(dir);
  const read = (f: string) => readFileSync(join(dir, f));

  // The proxy: TLS (HTTP/2 by ALPN) with a required client certificate, bytes passed on to the dev server.
  const clients: string[] = [];
  const sockets = new Set<Socket>();
  const proxy = createServer({
    key: read('server.key'), cert: read('server.pem'), ca: [read('ca.pem')],
    requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'],
  }, (tlsSocket: TLSSocket) => {
    clients.push(String(tlsSocket.getPeerCertificate().subject?.CN));
    const upstream = connect(s.info.port, '127.0.0.1');
    for (const sock of [tlsSocket, upstream]) {
      sockets.add(sock);
      sock.on('error', () => { tlsSocket.destroy(); upstream.destroy(); });
      sock.on('close', () => sockets.delete(sock));
    }
    tlsSocket.pipe(upstream).pipe(tlsSocket);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyAddress = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
  t.after(async () => {
    for (const sock of sockets) sock.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  });

  const toml = join(dir, 'temporal.toml');
  writeFileSync(toml, `[profile.secure]
address = "${proxyAddress}"
[profile.secure.tls]
client_cert_path = "${join(dir, 'client.pem')}"
client_key_path = "${join(dir, 'client.key')}"
server_ca_cert_path = "${join(dir, 'ca.pem')}"
server_name = "temporal.test"
`);
  const pipeline = join(dir, 'hello.yaml');
  writeFileSync(pipeline, `
name: tls-hello
steps:
  - id: hello
    uses: command
    with:
      run: [node, -e, "console.log('over TLS')"]
`);
  const base = { DOCTOR_AGENT_HOME: dir, PATH: process.env.PATH ?? '', TEMPORAL_CONFIG_FILE: toml };
  const cli = (env: Record<string, string>, ...args: string[]) =>
    execa(process.execPath, [join(PROJECT_ROOT, 'bin', 'doctor-agent.js'), ...args], { env: { ...base, ...env }, extendEnv: false, reject: false });

  // `run` connects its client (grpc-js) and its in-process worker (the native connection) through the proxy.
  const run = await cli({ TEMPORAL_PROFILE: 'secure' }, 'run', pipeline);
  assert.equal(run.exitCode, 0, run.stderr);
  const id = /run (tls-hello-\S+) started/.exec(run.stderr)?.[1];
  assert.ok(id, run.stderr);
  assert.equal((await s.client.workflow.getHandle(id).describe()).status.name, 'COMPLETED');
  assert.ok(clients.length >= 2, `connections through the proxy: ${clients.length}`);
  assert.ok(clients.every((cn) => cn === 'doctor-agent-client'), clients.join(', '));

  // The same CA and server name from TEMPORAL_TLS_* variables, but no client certificate: refused, and said where.
  const refused = await cli({
    TEMPORAL_ADDRESS: proxyAddress,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  }, 'list');
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, new RegExp(`^error: cannot reach Temporal at ${proxyAddress}, namespace default \\(address from TEMPORAL_ADDRESS, namespace from the default\\): .+$`));
});
