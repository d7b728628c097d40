import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { AsyncBuffer, FileMetaData } from 'hyparquet' with { 'resolution-mode': 'import' };
import { SyncError, isSyncError } from '../errors';
import { absorbAction, decodeJsonLines, emptyActions } from './logActions';
import { permissionError } from './logListing';
import type { CheckpointInfo, LogListing } from './logListing';
import { loadParquetModules } from './parquetFileAccess';
import type { Hyparquet } from './parquetFileAccess';
import { resolveActionPath } from './tablePaths';
import type { LogActions } from './types';

/**
 * Reading a checkpoint of the log (classic, multi-part or v2 with sidecars) into the
 * LogActions of its version: the live files, the protocol and the metadata.
 */

const CHECKPOINT_COLUMNS_ALL = ['add', 'remove', 'metaData', 'protocol', 'sidecar', 'checkpointMetadata'];
const CHECKPOINT_COLUMNS_META = ['metaData', 'protocol'];
/** Files above this size are read through ranged reads instead of being loaded whole. */
const WHOLE_FILE_LIMIT = 64 * 1024 * 1024;

async function openParquet(hp: Hyparquet, file: string): Promise<AsyncBuffer> {
  const st = await fs.stat(file);
  if (st.size > WHOLE_FILE_LIMIT) return hp.asyncBufferFromFile(file);
  const buf = await fs.readFile(file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return { byteLength: ab.byteLength, slice: (start: number, end?: number) => ab.slice(start, end) };
}

/**
 * Reads the action rows of a checkpoint parquet file (one action per row, nested objects),
 * row group by row group so that only one row group's decoded rows are held at a time.
 */
async function absorbParquetActions(file: string, acc: LogActions, wantFiles: boolean, sidecars: string[]): Promise<void> {
  const { hp, compressors } = await loadParquetModules();
  const buffer = await openParquet(hp, file);
  const metadata: FileMetaData = await hp.parquetMetadataAsync(buffer);
  const present = new Set(hp.parquetSchema(metadata).children.map((c) => c.element.name));
  const columns = (wantFiles ? CHECKPOINT_COLUMNS_ALL : CHECKPOINT_COLUMNS_META).filter((c) => present.has(c));
  if (columns.length === 0) return;
  let rowStart = 0;
  for (const rg of metadata.row_groups) {
    const rowEnd = rowStart + Number(rg.num_rows);
    if (rowEnd > rowStart) {
      const rows = await hp.parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd, compressors });
      for (const row of rows) absorbAction(acc, row, sidecars);
    }
    rowStart = rowEnd;
  }
}

/**
 * Reads a complete checkpoint: classic, multi-part (all parts), or v2 (JSON or parquet
 * top-level file plus its `_sidecars/` files). With `wantFiles` false only protocol and
 * metadata are read (sidecars hold only file actions, so they are skipped). The result
 * holds the live files as `adds`, never removes or cdcs (see LogActions).
 */
export async function readCheckpoint(listing: LogListing, cp: CheckpointInfo, wantFiles: boolean): Promise<LogActions> {
  const acc = emptyActions(cp.version);
  const sidecars: string[] = [];
  try {
    for (const file of cp.files) {
      if (file.endsWith('.json')) {
        const text = await fs.readFile(file, 'utf8');
        const decoded = decodeJsonLines(text, file, listing.tableRoot, cp.version, sidecars);
        acc.adds.push(...decoded.adds);
        if (decoded.protocol) acc.protocol = decoded.protocol;
        if (decoded.metadata) acc.metadata = decoded.metadata;
      } else {
        await absorbParquetActions(file, acc, wantFiles, sidecars);
      }
    }
    if (wantFiles) {
      const sidecarDir = path.join(listing.logDir, '_sidecars');
      for (const sc of sidecars) {
        const scPath = resolveActionPath(sidecarDir, sc, listing.tableRoot);
        await absorbParquetActions(scPath, acc, true, sidecars);
      }
    }
    // A checkpoint has no commitInfo: its version's timestamp is the file's modification time.
    acc.timestamp = Math.floor((await fs.stat(cp.files[0])).mtimeMs);
  } catch (cause) {
    if (isSyncError(cause)) throw cause;
    const file = (cause as NodeJS.ErrnoException).path ?? cp.files.join(', ');
    throw permissionError('the checkpoint file', file, cause, { table: listing.tableRoot, version: cp.version }) ?? new SyncError('delta-log', `Cannot read checkpoint ${cp.files.join(', ')} of version ${cp.version}: ${(cause as Error).message}`, {
      table: listing.tableRoot,
      version: cp.version,
      cause,
      hint: 'The checkpoint file is damaged or missing; delete it so that readers fall back to an older checkpoint or to the commits.',
    });
  }
  acc.removes = []; // tombstones of files already gone: not part of the state
  return acc;
}
