import { SyncError } from '../errors';
import type { FlatRun } from './flatColumns';
import { decodePages, flatColumnDecoder, loadPageModules } from './flatColumns';
import type { Converter } from './parquetConverters';
import { InvalidUtf8Error, compileConverter, compileTag, findChild, stripLossyAnnotations } from './parquetConverters';
import type { Hyparquet, InvalidUtf8Policy, ReadContext } from './parquetFileAccess';
import { DATA_PARSERS, checkAborted, fileError, fileSize, loadParquetModules, readMetadata, withFile } from './parquetFileAccess';
import type { ColumnMappingMode, DeltaField, DeltaType, Row } from './types';
import type { AsyncBuffer, ColumnChunk, FileMetaData, SchemaTree } from 'hyparquet' with { 'resolution-mode': 'import' };
import type { DecodedArray, PageLocation } from 'hyparquet/src/types.js' with { 'resolution-mode': 'import' };
import type { Compressors } from 'hyparquet-compressors' with { 'resolution-mode': 'import' };

/**
 * Reads Delta data files (parquet) into rows of DeltaValues keyed by logical column name:
 * row group by row group (window by window in large ones), column by column, building rows
 * only as each batch is filled.
 *
 * hyparquet decodes pages and assembles nesting (flat columns are walked page by page in
 * flatColumns.ts, with hyparquet's page primitives); the typing on top, from hyparquet's
 * values to DeltaValues, is parquetConverters.ts; opening the file and its footer is
 * parquetFileAccess.ts.
 */

export interface ParquetReadOptions {
  /** Logical data fields to produce (NOT partition columns: the caller adds those). Looked up in the file by physicalName (mode 'name'), by field_id falling back to physicalName (mode 'id'), or by name (mode 'none'); nested struct fields recursively. A field absent from the file (added later by schema evolution) reads as null. */
  fields: DeltaField[];
  columnMappingMode: ColumnMappingMode;
  /** Extra columns read by their exact parquet name and put into each row under that name. */
  extraColumns?: Array<{ name: string; type: DeltaType }>;
  /** Rows per yielded batch (default 10_000). Memory is bounded by one row group plus one batch. */
  batchSize?: number;
  /** Row filter by 0-based physical row index in the file (for deletion vectors): return false to drop the row. */
  keepRow?: (rowIndex: number) => boolean;
  /**
   * Leave out the file's first `skipRows` physical rows (a preview page far into a table):
   * row groups, windows and pages wholly before them are not decoded, and no row object
   * is built for them. Counts physical rows, so callers with a `keepRow` skip by themselves.
   */
  skipRows?: number;
  /** Stop after this many rows (after skipRows, counted before keepRow): pages past them are not decoded. */
  maxRows?: number;
  signal?: AbortSignal;
  /** For error messages: table path and version that referenced the file. */
  table?: string;
  version?: number;
  /** Text that is not valid UTF-8: 'fail' (default) refuses the file naming column, row and key; 'replace' reads U+FFFD for the bad bytes. */
  invalidUtf8?: InvalidUtf8Policy;
  /** Fields forming the row key, named in errors about a row's value (e.g. invalid UTF-8). */
  keyFields?: readonly string[];
}

/**
 * A per-row tag read before the row is built (see readTaggedParquetRows), e.g. `_change_type`
 * in cdc files. The tag decides which fields the row carries, so the values of the fields a
 * row does not need are never converted and never stored.
 */
export interface RowTagOptions {
  /**
   * Exact parquet name of a string column at the top level. Its value is not put into the
   * rows; it is handed back in the batch's `tags`. A column absent from the file tags every
   * row null. A non-string column is a 'delta-file' SyncError.
   */
  column: string;
  /** Rows whose tag is in this set are slim: they carry only `slimFields`. */
  slimTags?: ReadonlySet<string>;
  /**
   * Logical names of fields of `ParquetReadOptions.fields` that slim rows carry, in the
   * order of `fields`. Names that are not among `fields` are ignored. Default: none.
   */
  slimFields?: readonly string[];
}

/** One batch of readTaggedParquetRows: `tags[i]` is the tag of `rows[i]`. */
export interface TaggedRows {
  rows: Row[];
  /** Decoded tag values (null for a null value or a tag column missing from the file). */
  tags: Array<string | null>;
}

/** Number of rows from the footer only. */
export async function parquetRowCount(filePath: string): Promise<number> {
  const { hp } = await loadParquetModules();
  const size = await fileSize(filePath, {});
  const metadata = await withFile(filePath, size, {}, (file) => readMetadata(hp, file, filePath, {}));
  return Number(metadata.num_rows);
}

/**
 * Rows decoded per step of a large row group whose pages can be located (every column
 * chunk read has an offset index, as Spark and delta-rs write them). Row groups written by
 * Spark hold up to 128 MB of compressed data, millions of rows; decoding one whole would
 * cost gigabytes of JS objects. Smaller row groups, or ones without offset indexes, are
 * decoded whole: hyparquet can only decode a column chunk from its first page, so slicing
 * such a group would decode its start again for every slice.
 */
const WINDOW_ROWS = 65_536;

/**
 * Yields the rows of one parquet data file in batches, row group by row group, with
 * values typed by the requested Delta fields (see ParquetReadOptions).
 *
 * Memory: the decoded columns of one row group (or of one window of WINDOW_ROWS rows of a
 * large row group with page indexes) plus one batch of rows. Values are decoded column by
 * column and rows are built from the column arrays only as each batch is filled, so no
 * row object exists for rows outside the current batch. The file is opened for each
 * decoding step and closed before any batch is yielded, so abandoning the generator
 * leaks no file handle.
 */
export async function* readParquetRows(filePath: string, opts: ParquetReadOptions): AsyncGenerator<Row[]> {
  for await (const batch of readBatches(filePath, opts, undefined)) yield batch.rows;
}

/**
 * Like readParquetRows, plus a tag per row read from `tag.column` before the row is built
 * (RowTagOptions). Rows hold the requested fields (and extraColumns) but never the tag
 * column; a slim row (tag in `slimTags`) holds only the `slimFields`, and the other
 * columns' values of that row are not converted. Every column is still decoded: parquet
 * pages are decoded whole, so only the per-row work can be skipped. `keepRow` and batching
 * behave as in readParquetRows; `tags` is parallel to `rows`.
 */
export async function* readTaggedParquetRows(filePath: string, opts: ParquetReadOptions, tag: RowTagOptions): AsyncGenerator<TaggedRows> {
  yield* readBatches(filePath, opts, tag);
}

async function* readBatches(filePath: string, opts: ParquetReadOptions, tag: RowTagOptions | undefined): AsyncGenerator<TaggedRows> {
  const { hp, compressors } = await loadParquetModules();
  const ctx: ReadContext = { filePath, mode: opts.columnMappingMode, table: opts.table, version: opts.version, invalidUtf8: opts.invalidUtf8 };
  const size = await fileSize(filePath, opts);
  const metadata = await withFile(filePath, size, opts, (file) => readMetadata(hp, file, filePath, opts));
  const root = hp.parquetSchema(metadata);

  // Resolve every requested output column to its top-level parquet column (or none).
  const outputs: Output[] = [];
  for (const field of opts.fields) {
    const node = findChild(root, field, ctx.mode);
    outputs.push(
      node
        ? { name: field.name, source: node.element.name, convert: compileConverter(field.type, node, field.name, ctx) }
        : { name: field.name, convert: () => null },
    );
  }
  for (const extra of opts.extraColumns ?? []) {
    const node = root.children.find((c) => c.element.name === extra.name);
    outputs.push(
      node
        ? { name: extra.name, source: node.element.name, convert: compileConverter(extra.type, node, extra.name, ctx) }
        : { name: extra.name, convert: () => null },
    );
  }
  const tagNode = tag ? root.children.find((c) => c.element.name === tag.column) : undefined;
  const tagConvert = tagNode ? compileTag(tagNode, ctx) : undefined;
  const columns = [...new Set([...outputs.flatMap((o) => (o.source === undefined ? [] : [o.source])), ...(tagNode ? [tagNode.element.name] : [])])];
  const columnIndex = new Map(columns.map((c, i) => [c, i]));
  const sourceIndex = outputs.map((o) => (o.source === undefined ? -1 : (columnIndex.get(o.source) ?? -1)));
  const tagIndex = tagNode ? (columnIndex.get(tagNode.element.name) ?? -1) : -1;
  const names = outputs.map((o) => o.name);
  const converters = outputs.map((o) => o.convert);
  // Outputs of slim rows: positions into `outputs`, in the order of `fields`.
  const slimNames = new Set(tag?.slimFields ?? []);
  const slimOutputs = opts.fields.flatMap((f, k) => (slimNames.has(f.name) ? [k] : []));
  const slimTags = tag?.slimTags && tag.slimTags.size > 0 ? tag.slimTags : undefined;
  const readMeta: FileMetaData = { ...metadata, schema: metadata.schema.map(stripLossyAnnotations) };
  const readRoot = hp.parquetSchema(readMeta);

  const batchSize = Math.max(1, opts.batchSize ?? 10_000);
  const windowRows = Math.max(batchSize, WINDOW_ROWS);
  const keepRow = opts.keepRow;
  let rows: Row[] = [];
  let tags: Array<string | null> = [];
  let groupStart = 0;
  const skipRows = keepRow ? 0 : Math.max(0, opts.skipRows ?? 0);
  const endRow = opts.maxRows === undefined ? Infinity : skipRows + Math.max(0, opts.maxRows);
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const start = groupStart;
    groupStart += groupRows;
    if (start >= endRow) break;
    if (groupRows === 0 || start + groupRows <= skipRows) continue;
    const pages =
      groupRows > windowRows && columns.length > 0 ? await smallPages(hp, filePath, size, group.columns, columnIndex, groupRows, windowRows, ctx) : undefined;
    const step = pages ? windowRows : groupRows;
    const groupRead: GroupRead = { chunks: group.columns, groupStart: start, pages, dictionaries: new Map() };
    for (let windowStart = start; windowStart < start + groupRows; windowStart += step) {
      if (windowStart >= endRow) break;
      const to = Math.min(windowStart + step, start + groupRows, endRow);
      if (to <= skipRows) continue;
      const from = Math.max(windowStart, skipRows);
      checkAborted(opts.signal, ctx);
      const cursors = columns.length > 0 ? await decodeColumns(hp, compressors, filePath, size, readMeta, readRoot, columns, groupRead, from, to, ctx) : [];
      const tagCursor = tagIndex >= 0 ? cursors[tagIndex] : undefined;
      let r = from;
      try {
        for (; r < to; r++) {
          if (keepRow && !keepRow(r)) continue;
          let rowTag: string | null = null;
          if (tag) {
            rowTag = tagCursor && tagConvert ? tagConvert(tagCursor.at(r)) : null;
            tags.push(rowTag);
          }
          const row: Row = {};
          if (slimTags && rowTag !== null && slimTags.has(rowTag)) {
            for (let j = 0; j < slimOutputs.length; j++) {
              const k = slimOutputs[j];
              const src = sourceIndex[k];
              row[names[k]] = src < 0 ? null : converters[k](cursors[src].at(r));
            }
          } else {
            for (let k = 0; k < names.length; k++) {
              const src = sourceIndex[k];
              row[names[k]] = src < 0 ? null : converters[k](cursors[src].at(r));
            }
          }
          rows.push(row);
          if (rows.length >= batchSize) {
            checkAborted(opts.signal, ctx);
            yield { rows, tags };
            rows = [];
            tags = [];
          }
        }
      } catch (e) {
        if (e instanceof InvalidUtf8Error) throw invalidTextError(ctx, e, r, names, converters, sourceIndex, cursors, opts.keyFields);
        throw e;
      }
    }
  }
  if (rows.length > 0) {
    checkAborted(opts.signal, ctx);
    yield { rows, tags };
  }
}

/**
 * The error for a value that is not valid UTF-8 at row `r`: which column (found by
 * converting the row's values again until one fails), the row number in the file and,
 * when the key fields are known and readable, the row's key.
 */
function invalidTextError(
  ctx: ReadContext,
  e: InvalidUtf8Error,
  r: number,
  names: readonly string[],
  converters: readonly Converter[],
  sourceIndex: readonly number[],
  cursors: readonly ColumnCursor[],
  keyFields: readonly string[] | undefined,
): SyncError {
  let column: string | undefined;
  const key: string[] = [];
  for (let k = 0; k < names.length; k++) {
    const src = sourceIndex[k];
    if (src < 0) continue;
    try {
      const v = converters[k](cursors[src].at(r));
      if (keyFields?.includes(names[k])) key.push(`${names[k]}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
    } catch {
      column ??= names[k];
    }
  }
  let hex = '';
  for (const b of e.bytes.subarray(0, 32)) hex += `${b < 16 ? '0' : ''}${b.toString(16)} `;
  const where = `row ${r + 1} of the file${key.length > 0 ? ` (key ${key.join(', ')})` : ''}`;
  return new SyncError(
    'delta-file',
    `Data file ${ctx.filePath}${ctx.version === undefined ? '' : ` (version ${ctx.version})`}: column '${column ?? '?'}' at ${where} holds text that is not valid UTF-8 (bytes ${hex.trim()}${e.bytes.length > 32 ? ' ...' : ''}); nothing of it was applied`,
    {
      table: ctx.table,
      version: ctx.version,
      column,
      setting: 'invalidUtf8',
      hint: 'A writer put bytes that are not UTF-8 text into a string column. Fix the value in the Delta table (or store the column as binary), then sync again; to read such bytes as U+FFFD instead, set "invalidUtf8": "replace" in the mapping.',
    },
  );
}

interface Output {
  name: string;
  source?: string;
  convert: Converter;
}

/**
 * The page locations of every read column chunk of the row group, by top-level column,
 * when every one has an offset index and no page holds more than half a window of rows:
 * only then does decoding the group window by window bound memory (pages are decoded
 * whole) without decoding much twice (a page that straddles two windows is decoded for
 * both). Otherwise undefined, and the group is decoded whole.
 */
async function smallPages(
  hp: Hyparquet,
  filePath: string,
  size: number,
  chunks: ColumnChunk[],
  read: Map<string, number>,
  groupRows: number,
  windowRows: number,
  ctx: ReadContext,
): Promise<Map<string, PageLocation[]> | undefined> {
  const ranges: Array<[string, number, number]> = [];
  for (const chunk of chunks) {
    const top = chunk.meta_data?.path_in_schema[0];
    if (top === undefined || !read.has(top)) continue;
    if (!chunk.offset_index_offset || !chunk.offset_index_length) return undefined;
    const start = Number(chunk.offset_index_offset);
    ranges.push([chunk.meta_data?.path_in_schema.join('.') ?? top, start, start + chunk.offset_index_length]);
  }
  try {
    return await withFile(filePath, size, ctx, async (file) => {
      const byColumn = new Map<string, PageLocation[]>();
      for (const [column, start, end] of ranges) {
        const { page_locations: pages } = hp.readOffsetIndex({ view: new DataView(await file.slice(start, end)), offset: 0 });
        if (pages.length === 0) return undefined;
        for (let i = 0; i < pages.length; i++) {
          const next = i + 1 < pages.length ? Number(pages[i + 1].first_row_index) : groupRows;
          if (next - Number(pages[i].first_row_index) > windowRows / 2) return undefined;
        }
        byColumn.set(column, pages);
      }
      return byColumn;
    });
  } catch (e) {
    if (e instanceof SyncError) throw e;
    // An unreadable offset index only costs the windowing: the group is decoded whole.
    return undefined;
  }
}

/** A decoded run of one column's values: a page, or an array hyparquet assembled. */
interface ValueRun {
  readonly rowStart: number;
  readonly rowEnd: number;
  /** The value of absolute row `row`; rows are asked in non-decreasing order. */
  at(row: number): unknown;
}

class ArrayRun implements ValueRun {
  constructor(
    readonly rowStart: number,
    readonly rowEnd: number,
    private readonly data: ArrayLike<unknown>,
  ) {}

  at(row: number): unknown {
    return this.data[row - this.rowStart];
  }
}

/**
 * Values of one column for a range of rows: a list of decoded runs with their absolute
 * first row. Reads must ask for increasing rows.
 */
class ColumnCursor {
  private readonly runs: ValueRun[] = [];
  private current = 0;

  add(run: ValueRun): void {
    this.runs.push(run);
  }

  /** Sorts the runs and checks that they cover [from, to). */
  seal(from: number, to: number): boolean {
    this.runs.sort((a, b) => a.rowStart - b.rowStart);
    let covered = from;
    for (const run of this.runs) {
      if (run.rowStart > covered) return false;
      covered = Math.max(covered, run.rowEnd);
    }
    return covered >= to;
  }

  at(row: number): unknown {
    let run = this.runs[this.current];
    while (row >= run.rowEnd) run = this.runs[++this.current];
    return run.at(row);
  }
}

/** One row group being read: its chunks, first row, page locations when windowed, and the dictionaries decoded so far (by column), reused by later windows. */
interface GroupRead {
  chunks: ColumnChunk[];
  groupStart: number;
  pages: Map<string, PageLocation[]> | undefined;
  dictionaries: Map<string, DecodedArray | undefined>;
}

/**
 * Decodes the given top-level columns for rows [from, to) of one row group, column-wise
 * (no row objects). Flat columns (top-level, non-repeated primitives) are decoded page by
 * page here (flatColumns.ts); nested ones through hyparquet's reader. Pages may extend
 * past the range; the cursors index them by absolute row.
 */
async function decodeColumns(
  hp: Hyparquet,
  compressors: Compressors,
  filePath: string,
  size: number,
  metadata: FileMetaData,
  root: SchemaTree,
  columns: string[],
  group: GroupRead,
  from: number,
  to: number,
  ctx: ReadContext,
): Promise<ColumnCursor[]> {
  const cursors = columns.map(() => new ColumnCursor());
  const index = new Map(columns.map((c, i) => [c, i]));
  const flat: Array<{ i: number; node: SchemaTree; chunk: ColumnChunk }> = [];
  const nested: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const node = root.children.find((c) => c.element.name === columns[i]);
    const chunk = group.chunks.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === columns[i]);
    if (node && chunk && node.children.length === 0 && node.element.repetition_type !== 'REPEATED') flat.push({ i, node, chunk });
    else nested.push(columns[i]);
  }
  try {
    await withFile(filePath, size, ctx, async (file) => {
      if (flat.length > 0) {
        const m = await loadPageModules();
        for (const { i, node, chunk } of flat) {
          await decodeFlat(m, file, root, node, chunk, compressors, group, from, to, (run) => cursors[i].add(run));
        }
      }
      if (nested.length > 0) {
        await hp.parquetRead({
          file,
          metadata,
          columns: nested,
          rowStart: from,
          rowEnd: to,
          useOffsetIndex: group.pages !== undefined,
          utf8: false,
          parsers: DATA_PARSERS,
          compressors,
          onChunk: (chunk) => {
            const i = index.get(chunk.columnName);
            if (i !== undefined) cursors[i].add(new ArrayRun(chunk.rowStart, chunk.rowEnd, chunk.columnData));
          },
        });
      }
    });
  } catch (e) {
    if (e instanceof SyncError) throw e;
    throw fileError(ctx, `cannot decode rows ${from}..${to - 1}: ${(e as Error).message}`, e);
  }
  for (let i = 0; i < columns.length; i++) {
    if (!cursors[i].seal(from, to)) throw fileError(ctx, `column '${columns[i]}' has fewer values than rows ${from}..${to - 1}`, undefined, columns[i]);
  }
  return cursors;
}

/**
 * Reads and decodes the pages of one flat column chunk that overlap rows [from, to): the
 * whole chunk, or (when the group is windowed) its dictionary page once and then only the
 * pages the offset index places in the window.
 */
async function decodeFlat(
  m: Awaited<ReturnType<typeof loadPageModules>>,
  file: AsyncBuffer,
  root: SchemaTree,
  node: SchemaTree,
  chunk: ColumnChunk,
  compressors: Compressors,
  group: GroupRead,
  from: number,
  to: number,
  onRun: (run: FlatRun) => void,
): Promise<void> {
  const meta = chunk.meta_data;
  if (!meta) throw new Error(`column chunk of '${node.element.name}' has no metadata`);
  if (chunk.file_path) throw new Error(`column chunk of '${node.element.name}' is in another file (${chunk.file_path}), which is not supported`);
  const decoder = flatColumnDecoder(root, node, meta, DATA_PARSERS, compressors);
  const dataStart = Number(meta.data_page_offset);
  // 0 is never a page's offset (the file starts with its magic), so it means "no dictionary".
  const dictStart = meta.dictionary_page_offset ? Number(meta.dictionary_page_offset) : undefined;
  const chunkStart = dictStart !== undefined && dictStart < dataStart ? dictStart : dataStart;
  const chunkEnd = chunkStart + Number(meta.total_compressed_size);
  const pages = group.pages?.get(meta.path_in_schema.join('.'));
  if (!pages) {
    const bytes = new Uint8Array(await file.slice(chunkStart, chunkEnd));
    decodePages(m, bytes, decoder, { firstRow: group.groupStart, from, to }, undefined, onRun);
    return;
  }
  const name = node.element.name;
  let dictionary = group.dictionaries.get(name);
  const firstPage = Number(pages[0].offset);
  if (!group.dictionaries.has(name)) {
    dictionary = chunkStart < firstPage ? decodePages(m, new Uint8Array(await file.slice(chunkStart, firstPage)), decoder, { firstRow: group.groupStart, from, to }, undefined, onRun) : undefined;
    group.dictionaries.set(name, dictionary);
  }
  const relFrom = from - group.groupStart;
  const relTo = to - group.groupStart;
  let first = 0;
  while (first + 1 < pages.length && Number(pages[first + 1].first_row_index) <= relFrom) first++;
  let last = first;
  while (last + 1 < pages.length && Number(pages[last + 1].first_row_index) < relTo) last++;
  const start = Number(pages[first].offset);
  const end = Number(pages[last].offset) + pages[last].compressed_page_size;
  const bytes = new Uint8Array(await file.slice(start, end));
  decodePages(m, bytes, decoder, { firstRow: group.groupStart + Number(pages[first].first_row_index), from, to }, dictionary, onRun);
}
