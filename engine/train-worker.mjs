// A data-parallel training thread (engine/parallel-train.ts): loads its TypeScript through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./train-worker.ts');
