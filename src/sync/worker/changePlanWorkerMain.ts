// Entry of the change reader worker thread (bundled as dist/changePlanWorker.js).
import { parentPort, workerData } from 'node:worker_threads';
import { runChangePlanWorker } from './changePlanWorker';

if (parentPort) void runChangePlanWorker(parentPort, workerData);
