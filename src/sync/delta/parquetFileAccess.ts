import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SyncError } from '../errors';
import type { ColumnMappingMode } from './types';
import type { AsyncBuffer, FileMetaData, ParquetParsers } from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as HyparquetModule from 'hyparquet' with { 'resolution-mode': 'import' };
import type { Compressors } from 'hyparquet-compressors' with { 'resolution-mode': 'import' };

/**
 * Opening parquet files for hyparquet: loading the module, positional reads, the footer,
 * the parsers that keep full precision, and the errors that name the file (and the table
 * and version that referenced it).
 */

export type Hyparquet = typeof HyparquetModule;

export interface ParquetModules {
  hp: Hyparquet;
  compressors: Compressors;
}

let modulesPromise: Promise<ParquetModules> | undefined;

/** hyparquet is ESM-only; the engine is CommonJS, so it is loaded once through import() (data files and checkpoints share it). */
export function loadParquetModules(): Promise<ParquetModules> {
  modulesPromise ??= (async () => {
    const hp = await import('hyparquet');
    const { compressors } = await import('hyparquet-compressors');
    return { hp, compressors };
  })();
  return modulesPromise;
}

const utf8Decoder = new TextDecoder();

/** Parsers keeping full precision: timestamps as bigint microseconds, dates as day numbers. */
export const PARSERS: ParquetParsers = {
  timestampFromMilliseconds: (millis: bigint): bigint => BigInt(millis) * 1000n,
  timestampFromMicroseconds: (micros: bigint): bigint => BigInt(micros),
  timestampFromNanoseconds: (nanos: bigint): bigint => {
    const n = BigInt(nanos);
    // Floor, not truncate: -1ns is in the microsecond before the epoch.
    return n >= 0n ? n / 1000n : -((-n + 999n) / 1000n);
  },
  dateFromDays: (days: number): number => days,
  stringFromBytes: (bytes: Uint8Array): string | undefined => (bytes ? utf8Decoder.decode(bytes) : undefined),
  jsonFromBytes: (bytes: Uint8Array): string | undefined => (bytes ? utf8Decoder.decode(bytes) : undefined),
  geometryFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
  geographyFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
  uuidFromBytes: (bytes: Uint8Array): Uint8Array => bytes,
};

const fatalUtf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * PARSERS for data values: text that is not valid UTF-8 is handed on as its bytes (a
 * Uint8Array where hyparquet expects a string), so the column's converter decides what to
 * do with it (invalidUtf8 policy) instead of U+FFFD replacing it here without a word.
 */
export const DATA_PARSERS: ParquetParsers = {
  ...PARSERS,
  stringFromBytes: (bytes: Uint8Array): string | undefined => {
    if (!bytes) return undefined;
    try {
      return fatalUtf8Decoder.decode(bytes);
    } catch {
      return bytes as unknown as string;
    }
  },
};

/** What to do with text that is not valid UTF-8: refuse the file (default), or read it with U+FFFD for the bad bytes. */
export type InvalidUtf8Policy = 'fail' | 'replace';

/** Where a file comes from, for error messages: the table path and the version that referenced it. */
export interface FileOrigin {
  table?: string;
  version?: number;
}

/** One data file being read, for error messages and column lookup. */
export interface ReadContext extends FileOrigin {
  filePath: string;
  mode: ColumnMappingMode;
  /** Default 'fail'. */
  invalidUtf8?: InvalidUtf8Policy;
}

export async function fileSize(filePath: string, opts: FileOrigin): Promise<number> {
  try {
    return (await fs.stat(filePath)).size;
  } catch (e) {
    throw openError(filePath, opts, e);
  }
}

function openError(filePath: string, opts: FileOrigin, e: unknown): SyncError {
  const code = (e as NodeJS.ErrnoException).code;
  const missing = code === 'ENOENT';
  return new SyncError(
    'delta-file',
    missing
      ? `Data file ${filePath} is missing${describeOrigin(opts)}`
      : `Cannot open data file ${filePath}${describeOrigin(opts)}: ${(e as Error).message}`,
    {
      table: opts.table,
      version: opts.version,
      cause: e,
      retry: missing ? 'never' : 'manual',
      hint: missing
        ? 'The file was probably removed by VACUUM. Read a newer version, or run a full reload.'
        : 'Check that the file is readable by this user.',
    },
  );
}

/**
 * Runs `fn` with the file open as a hyparquet AsyncBuffer. Each slice is one positional
 * read into a buffer of exactly its size (hyparquet's asyncBufferFromFile opens a stream
 * per slice and concatenates 64 KB chunks, twice the memory), and the handle is closed
 * when `fn` settles.
 */
export async function withFile<T>(
  filePath: string,
  size: number,
  opts: FileOrigin,
  fn: (file: AsyncBuffer) => Promise<T>,
): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (e) {
    throw openError(filePath, opts, e);
  }
  try {
    return await fn({
      byteLength: size,
      slice: (start: number, end?: number) => readRange(handle, start, Math.min(end ?? size, size)),
    });
  } finally {
    await handle.close();
  }
}

async function readRange(handle: FileHandle, start: number, end: number): Promise<ArrayBuffer> {
  const length = Math.max(0, end - start);
  const buffer = new ArrayBuffer(length);
  const view = new Uint8Array(buffer);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(view, done, length - done, start + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${start + done}`);
    done += bytesRead;
  }
  return buffer;
}

export async function readMetadata(
  hp: Hyparquet,
  file: AsyncBuffer,
  filePath: string,
  opts: FileOrigin,
): Promise<FileMetaData> {
  try {
    return await hp.parquetMetadataAsync(file, { parsers: PARSERS, geoparquet: false });
  } catch (e) {
    throw new SyncError('delta-file', `Data file ${filePath}${describeOrigin(opts)} is not a valid parquet file: ${(e as Error).message}`, {
      table: opts.table,
      version: opts.version,
      cause: e,
      hint: 'The file is corrupt or truncated; restore it or rewrite the table.',
    });
  }
}

function describeOrigin(opts: FileOrigin): string {
  if (opts.table === undefined) return '';
  return ` (table ${opts.table}${opts.version === undefined ? '' : `, version ${opts.version}`})`;
}

export function fileError(ctx: ReadContext, reason: string, cause?: unknown, column?: string): SyncError {
  return new SyncError('delta-file', `Data file ${ctx.filePath}${describeOrigin(ctx)}: ${reason}`, {
    table: ctx.table,
    version: ctx.version,
    column,
    cause,
    hint: 'The file is corrupt or does not match the table schema.',
  });
}

export function checkAborted(signal: AbortSignal | undefined, ctx: ReadContext): void {
  if (signal?.aborted) {
    throw new SyncError('cancelled', `Reading ${ctx.filePath} was cancelled`, { table: ctx.table, version: ctx.version });
  }
}
