/**
 * What the benches that run a sync against a server share (lagBench, latencyBench): the
 * server (DATABASE_URL, else a throwaway cluster with the server's durability defaults), a
 * temp folder for the Delta source, the machine's load line, and the entry wrapper.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startThrowawayServer } from '../test/helpers/postgres';

export interface BenchDatabase {
  url: string;
  /** A temp folder for the bench's Delta tables, removed by close(). */
  dir: string;
  close(): Promise<void>;
}

/** DATABASE_URL, or a throwaway cluster (fast: false, the server's durability defaults); and a temp folder named `dns-<name>-`. */
export async function benchDatabase(name: string): Promise<BenchDatabase> {
  const server = process.env.DATABASE_URL ? undefined : await startThrowawayServer({ fast: false });
  const url = process.env.DATABASE_URL ?? (server as { adminUrl: string }).adminUrl;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dns-${name}-`));
  return {
    url,
    dir,
    close: async () => {
      fs.rmSync(dir, { recursive: true, force: true });
      await server?.stop();
    },
  };
}

/** `load average 1.20 0.80 0.50 (2 CPUs)`: benches share the machine, so each result says how busy it was. */
export function loadLine(): string {
  return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`;
}

/** Runs a bench's main; a failure prints its stack and exits 1. */
export function runBench(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  });
}
