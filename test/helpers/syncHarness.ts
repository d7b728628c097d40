import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { CUSTOMER_PROFILE_COLUMNS, customerAt, generateCustomers, upgradedCustomer } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { createPool } from '../../src/sync/postgres/createPool';
import { openSource } from '../../src/sync/open/openSource';
import type { SyncEvent } from '../../src/sync/ports/events';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { mappingTarget } from '../../src/sync/open/openTarget';

/** Repository root (this file is test/helpers/syncHarness.ts). */
export const REPO_ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

let built: Promise<void> | undefined;

/**
 * Builds dist/cli.js once per test process (the CLI entry only, like esbuild.mjs), so
 * process-level tests run the code in the working tree. npm packages stay external (loaded
 * from node_modules at run time): these tests are about the engine, not the bundling of
 * dependencies (some ship native .node files esbuild cannot bundle).
 */
export function buildCli(): Promise<void> {
  built ??= (async () => {
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [path.join(REPO_ROOT, 'src/cli.ts')],
      outfile: CLI,
      bundle: true,
      sourcemap: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      banner: { js: '#!/usr/bin/env node' },
      packages: 'external',
      logLevel: 'error',
    });
  })();
  return built;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI; the caller may kill it. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult>; output(): { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Runs the CLI to its end. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/** A fresh temp folder, removed at process exit. */
export async function tempDir(prefix = 'dns-sync-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  process.once('exit', () => {
    try {
      require('node:fs').rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  });
  return dir;
}

export interface OpenedRunner {
  runner: SyncRunner;
  pool: Pool;
  events: SyncEvent[];
  close(): Promise<void>;
}

/** A SyncRunner for `mapping` on a real server URL (its own pool). */
export async function openRunner(mapping: Mapping, url: string): Promise<OpenedRunner> {
  const pool = createPool(url, { max: 4 });
  const source = await openSource(mapping.source);
  return { runner: new SyncRunner(mapping, source, mappingTarget(pool, mapping.target)), pool, events: [], close: () => pool.end() };
}

/** Writes a mapping file (as JSON) and returns its path. */
export async function writeMappingFile(dir: string, name: string, json: unknown): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  await fs.writeFile(file, JSON.stringify(json, null, 2));
  return file;
}

/**
 * A customer_profiles-shaped table with many versions, for kill tests: v0 create, then
 * `appends` commits of `perAppend` new customers each; every 4th commit after the first
 * also updates 300 earlier customers and deletes 50 (through cdc files). Returns the
 * latest version.
 */
export async function createManyVersionsTable(dir: string, opts: { appends: number; perAppend: number }): Promise<number> {
  const w = await DeltaTableWriter.create(dir, {
    columns: [...CUSTOMER_PROFILE_COLUMNS],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
    name: 'many_versions',
  });
  let next = 1;
  let deleted = new Set<number>();
  for (let i = 0; i < opts.appends; i++) {
    await w.append(generateCustomers(opts.perAppend, 42, next), { rowsPerFile: opts.perAppend });
    next += opts.perAppend;
    if (i > 0 && i % 4 === 0) {
      const lo = (i - 1) * opts.perAppend + 1;
      const upd: number[] = [];
      for (let k = lo; k < lo + 300; k++) if (!deleted.has(k)) upd.push(k);
      await w.update('customer_id', upd.map((k) => upgradedCustomer(customerAt(k, 42))), { rowsPerFile: opts.perAppend });
      const del: number[] = [];
      for (let k = lo + 300; k < lo + 350; k++) del.push(k);
      await w.delete('customer_id', del.map((k) => customerAt(k, 42).customer_id as string), { rowsPerFile: opts.perAppend });
      deleted = new Set([...deleted, ...del]);
    }
  }
  return w.version;
}

/** Polls `fn` every `everyMs` until it returns a value other than undefined, or times out. */
export async function pollUntil<T>(fn: () => Promise<T | undefined>, opts: { timeoutMs: number; everyMs?: number; what: string }): Promise<T> {
  const end = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20));
  }
}
