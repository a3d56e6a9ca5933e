/** `doctor-agent server start|stop|status`: the embedded Temporal dev server of the artifact store. */
import type { Command } from 'commander';
import { ArtifactStore } from '../../runtime/store.ts';

/** The server functions load the Temporal client: only when a subcommand runs. */
const runtime = () => import('../../runtime/temporal.ts');

/** A line when the connection settings name another server (TEMPORAL_ADDRESS, a temporal.toml profile). */
async function noteConfiguredServer(what: string): Promise<void> {
  const { loadConnectionSettings } = await import('../../runtime/connection.ts');
  const s = loadConnectionSettings();
  if (s.address) console.log(`note: ${s.address} is configured (${s.from.address}), ${what}`);
}

export function registerServer(program: Command): void {
  const server = program.command('server').description('the embedded Temporal dev server (SQLite database in the artifact store)');

  server
    .command('start')
    .description('start the server in the background (does nothing if it already runs)')
    .option('--port <n>', 'gRPC port (default: the last one used, else 7233, else a free one)', Number)
    .option('--ui-port <n>', 'Web UI port (default: port + 1000)', Number)
    .action(async (o: { port?: number; uiPort?: number }) => {
      const { serverPaths, startServer } = await runtime();
      const store = new ArtifactStore();
      const { info, started } = await startServer(serverPaths(store), { port: o.port, uiPort: o.uiPort });
      console.log(`${started ? 'Started' : 'Already running:'} Temporal server at ${info.address} (pid ${info.pid})`);
      console.log(`Web UI: ${info.uiAddress}`);
      console.log(`Database: ${info.dbFile}`);
      await noteConfiguredServer('so other commands use that server, not this one');
    });

  server
    .command('stop')
    .description('stop the server (its database stays; runs continue after the next start)')
    .action(async () => {
      const { serverPaths, stopServer } = await runtime();
      const stopped = await stopServer(serverPaths(new ArtifactStore()));
      console.log(stopped ? 'Stopped the Temporal server.' : 'The Temporal server was not running.');
    });

  server
    .command('status')
    .description('whether the server runs, and where')
    .action(async () => {
      const { serverPaths, serverStatus, temporalCliVersion } = await runtime();
      const st = await serverStatus(serverPaths(new ArtifactStore()));
      if (st.running) {
        console.log(`running at ${st.info.address} (pid ${st.info.pid}, since ${st.info.startedAt})`);
        console.log(`Web UI: ${st.info.uiAddress}`);
        console.log(`Database: ${st.info.dbFile}`);
        console.log(temporalCliVersion());
      } else {
        console.log(`not running (${st.reason}); \`doctor-agent server start\` starts it`);
        process.exitCode = 3;
      }
      await noteConfiguredServer('commands use that server');
    });
}
