// The entry of the engine's worker threads (data-parallel training, the decode thread): loads
// tsx, then the TypeScript module named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
