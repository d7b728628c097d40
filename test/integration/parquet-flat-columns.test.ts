import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ColumnChunk, FileMetaData, SchemaTree } from 'hyparquet' with { 'resolution-mode': 'import' };
import type { ColumnDecoder } from 'hyparquet/src/types.js' with { 'resolution-mode': 'import' };
import type { FlatRun } from '../../src/sync/delta/flatColumns';
import { decodePages, flatColumnDecoder, loadPageModules } from '../../src/sync/delta/flatColumns';
import { CUSTOMER_PROFILE_COLUMNS, customerAt } from '../../src/fixtures/customerProfiles';
import { writeParquetRows } from '../../src/fixtures/fixtureParquet';
import { readParquetRows } from '../../src/sync/delta/parquetFile';
import { fieldsOf } from '../builders/deltaFields';
import { expectSyncError } from '../helpers/expectSyncError';
import { SHARED_TABLES_DIR } from '../helpers/sharedTables';

/**
 * The reader decodes flat columns page by page itself (flatColumns.ts) instead of through
 * hyparquet's column reader. Both must give the same value for every row: this compares
 * them column chunk by column chunk, on every parquet file Spark and delta-rs wrote in the
 * shared tables (data page v1, PLAIN and PLAIN_DICTIONARY, SNAPPY and ZSTD, INT96, nulls)
 * and on files written here with the encodings those lack (data page v2, RLE_DICTIONARY,
 * RLE booleans, the DELTA_* encodings, BYTE_STREAM_SPLIT), all-null and null-free pages,
 * many small pages, and row ranges that start and end inside pages.
 */

type Hp = typeof import('hyparquet', { with: { 'resolution-mode': 'import' } });

interface Loaded {
  hp: Hp;
  compressors: NonNullable<ColumnDecoder['compressors']>;
  m: Awaited<ReturnType<typeof loadPageModules>>;
}

let loaded: Loaded | undefined;
async function load(): Promise<Loaded> {
  if (!loaded) {
    const hp = await import('hyparquet');
    const { compressors } = await import('hyparquet-compressors');
    loaded = { hp, compressors, m: await loadPageModules() };
  }
  return loaded;
}

/** Values compared as the reader's converters would see them: undefined and null alike, bytes by content. */
function same(a: unknown, b: unknown): boolean {
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  return a === b;
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `bytes[${Buffer.from(v).toString('hex')}]`;
  if (v instanceof Date) return `Date(${v.toISOString()})`;
  return typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v);
}

interface Compared {
  chunks: number;
  rows: number;
  pageKinds: Set<string>;
}

/**
 * Compares every flat column of `file` over rows [from, to) of each row group (fractions
 * of the group), reading every `stride`-th row from the page runs (the reader skips rows
 * of slim preimages the same way).
 */
async function compareFile(file: string, opts: { from?: number; to?: number; stride?: number } = {}): Promise<Compared> {
  const { hp, compressors, m } = await load();
  const bytes = await fs.readFile(file);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const metadata: FileMetaData = hp.parquetMetadata(ab);
  const root: SchemaTree = hp.parquetSchema(metadata);
  const out: Compared = { chunks: 0, rows: 0, pageKinds: new Set() };
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const from = groupStart + Math.floor(groupRows * (opts.from ?? 0));
    const to = groupStart + Math.ceil(groupRows * (opts.to ?? 1));
    for (const chunk of group.columns as ColumnChunk[]) {
      const meta = chunk.meta_data;
      if (!meta || meta.path_in_schema.length !== 1) continue;
      const node = root.children.find((c) => c.element.name === meta.path_in_schema[0]);
      if (!node || node.children.length > 0 || node.element.repetition_type === 'REPEATED') continue;
      const name = node.element.name;
      const expected = new Array<unknown>(to - from);
      await hp.parquetRead({
        file: ab,
        metadata,
        columns: [name],
        rowStart: from,
        rowEnd: to,
        utf8: false,
        compressors,
        onChunk: (c) => {
          for (let r = Math.max(c.rowStart, from); r < Math.min(c.rowEnd, to); r++) expected[r - from] = c.columnData[r - c.rowStart];
        },
      });
      const decoder = flatColumnDecoder(root, node, meta, (await import('hyparquet/src/convert.js')).DEFAULT_PARSERS, compressors);
      const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
      const chunkBytes = new Uint8Array(ab, start, Number(meta.total_compressed_size));
      const runs: FlatRun[] = [];
      decodePages(m, chunkBytes, decoder, { firstRow: groupStart, from, to }, undefined, (run) => runs.push(run));
      let k = 0;
      const stride = opts.stride ?? 1;
      for (let r = from; r < to; r += stride) {
        while (r >= runs[k].rowEnd) k++;
        const got = runs[k].at(r);
        assert.ok(same(got, expected[r - from]), `${path.basename(file)} column ${name}, row ${r}: ${show(got)} but hyparquet reads ${show(expected[r - from])}`);
        out.rows++;
      }
      out.chunks++;
      out.pageKinds.add(`${meta.type} ${meta.encodings.join('+')}`);
    }
    groupStart += groupRows;
  }
  return out;
}

async function parquetFilesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files.push(...(await parquetFilesUnder(p)));
    else if (e.name.endsWith('.parquet') && !p.includes(`${path.sep}_delta_log${path.sep}`)) files.push(p);
  }
  return files;
}

describe('flat column decoding equals hyparquet reading the same column', function () {
  this.timeout(120_000);

  it('on every data file of the shared Spark and delta-rs tables, whole and from the middle of each row group', async function () {
    if (!SHARED_TABLES_DIR) this.skip();
    const files = await parquetFilesUnder(SHARED_TABLES_DIR as string);
    assert.ok(files.length > 50, `expected the shared tables' data files, found ${files.length}`);
    let chunks = 0;
    let rows = 0;
    const kinds = new Set<string>();
    for (const file of files) {
      const whole = await compareFile(file);
      const middle = await compareFile(file, { from: 0.3, to: 0.8, stride: 3 });
      chunks += whole.chunks + middle.chunks;
      rows += whole.rows + middle.rows;
      for (const k of whole.pageKinds) kinds.add(k);
    }
    assert.ok(chunks > 100 && rows > 1000, `compared ${chunks} chunks, ${rows} rows`);
    // The shared tables hold dictionary-encoded and plain columns of several physical types.
    assert.ok([...kinds].some((k) => k.includes('DICTIONARY')), [...kinds].join(', '));
    assert.ok([...kinds].some((k) => k.startsWith('INT96')), [...kinds].join(', '));
  });

  describe('on files written with every encoding hyparquet-writer offers', () => {
    let dir: string;
    before(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flat-columns-'));
    });
    after(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    const ROWS = 5_000;
    /** null every `every` rows (0: never; 1: always). */
    function nullish<T>(every: number, make: (i: number) => T): Array<T | null> {
      return Array.from({ length: ROWS }, (_, i) => (every > 0 && i % every === 0 ? null : make(i)));
    }
    const text = (i: number): string => (i % 7 === 0 ? '' : i % 5 === 0 ? `naïve ✓ ${i} 東京` : `customer-${i}@example.com`);

    const cases: Array<{ name: string; type: string; encoding?: string; data: unknown[]; required?: boolean }> = [
      { name: 's_plain', type: 'STRING', encoding: 'PLAIN', data: nullish(3, text) },
      { name: 's_dict', type: 'STRING', encoding: 'RLE_DICTIONARY', data: nullish(4, (i) => `segment-${i % 9}`) },
      { name: 's_dlba', type: 'STRING', encoding: 'DELTA_LENGTH_BYTE_ARRAY', data: nullish(6, text) },
      { name: 's_dba', type: 'STRING', encoding: 'DELTA_BYTE_ARRAY', data: nullish(5, text) },
      { name: 's_required', type: 'STRING', encoding: 'PLAIN', data: Array.from({ length: ROWS }, (_, i) => text(i)), required: true },
      { name: 's_all_null', type: 'STRING', data: nullish(1, text) },
      { name: 'i32_plain', type: 'INT32', encoding: 'PLAIN', data: nullish(2, (i) => i * 37 - 1000) },
      { name: 'i32_delta', type: 'INT32', encoding: 'DELTA_BINARY_PACKED', data: nullish(11, (i) => (i * 7919) % 100_003) },
      { name: 'i64_plain', type: 'INT64', encoding: 'PLAIN', data: nullish(0, (i) => BigInt(i) * 1_000_000_007n - 3n) },
      { name: 'i64_delta', type: 'INT64', encoding: 'DELTA_BINARY_PACKED', data: nullish(13, (i) => BigInt(i) << 33n) },
      { name: 'i64_dict', type: 'INT64', encoding: 'RLE_DICTIONARY', data: nullish(17, (i) => BigInt(i % 3)) },
      { name: 'f64_plain', type: 'DOUBLE', encoding: 'PLAIN', data: nullish(4, (i) => (i % 10 === 1 ? -0 : i / 7)) },
      { name: 'f64_bss', type: 'DOUBLE', encoding: 'BYTE_STREAM_SPLIT', data: nullish(9, (i) => i * 1.5e-3) },
      { name: 'f32_plain', type: 'FLOAT', encoding: 'PLAIN', data: nullish(8, (i) => Math.fround(i / 3)) },
      { name: 'b_rle', type: 'BOOLEAN', data: nullish(3, (i) => i % 4 === 1) },
      { name: 'b_plain', type: 'BOOLEAN', encoding: 'PLAIN', data: nullish(0, (i) => i % 3 === 0) },
      { name: 'ts', type: 'TIMESTAMP', data: nullish(10, (i) => new Date(Date.UTC(2024, 0, 1) + i * 3_600_000)) },
      { name: 'bin', type: 'BYTE_ARRAY', encoding: 'PLAIN', data: nullish(6, (i) => new Uint8Array([i & 0xff, (i >> 8) & 0xff, 0, 255])) },
    ];

    for (const pageSize of [256, 1 << 20]) {
      it(`every column, with ${pageSize === 256 ? 'pages of a few rows' : 'one page per row group'}, whole and from inside a page`, async () => {
        const hw = await import('hyparquet-writer');
        const file = path.join(dir, `all-${pageSize}.parquet`);
        const buffer = hw.parquetWriteBuffer({
          columnData: cases.map((c) => ({
            name: c.name,
            data: c.data,
            type: c.type,
            nullable: c.required !== true,
            ...(c.encoding ? { encoding: c.encoding } : {}),
          })) as Parameters<typeof hw.parquetWriteBuffer>[0]['columnData'],
          codec: 'SNAPPY',
          rowGroupSize: 2_000,
          pageSize,
        });
        await fs.writeFile(file, new Uint8Array(buffer));
        const whole = await compareFile(file);
        assert.equal(whole.chunks, cases.length * 3);
        assert.equal(whole.rows, cases.length * ROWS);
        const inside = await compareFile(file, { from: 0.37, to: 0.91, stride: 7 });
        assert.ok(inside.rows > 0);
        const encodings = [...whole.pageKinds].join(', ');
        for (const e of ['RLE_DICTIONARY', 'DELTA_BINARY_PACKED', 'DELTA_LENGTH_BYTE_ARRAY', 'DELTA_BYTE_ARRAY', 'BYTE_STREAM_SPLIT']) {
          assert.ok(encodings.includes(e), `the written file uses ${e}: ${encodings}`);
        }
      });
    }
  });

  it('a data page whose bytes are damaged is a delta-file error naming the file, table, version and rows, not a crash or a hang', async () => {
    const { hp, m } = await load();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flat-corrupt-'));
    try {
      const file = path.join(dir, 'part-0.parquet');
      const rows = Array.from({ length: 3_000 }, (_, i) => customerAt(i + 1));
      await writeParquetRows(file, [...CUSTOMER_PROFILE_COLUMNS], rows, { rowGroupSize: 3_000 });
      const bytes = await fs.readFile(file);
      const metadata: FileMetaData = hp.parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      const email = metadata.row_groups[0].columns.find((c) => c.meta_data?.path_in_schema[0] === 'email')?.meta_data;
      assert.ok(email, 'the file has an email column');
      // Overwrite the body of email's first data page (after its header) with 0xFF.
      const start = Number(email.data_page_offset);
      const reader = { view: new DataView(bytes.buffer, bytes.byteOffset + start, Number(email.total_compressed_size)), offset: 0 };
      const header = m.parquetHeader(reader);
      assert.equal(header.type === 'DATA_PAGE' || header.type === 'DATA_PAGE_V2', true);
      bytes.fill(0xff, start + reader.offset, start + reader.offset + Math.min(header.compressed_page_size, 64));
      await fs.writeFile(file, bytes);
      const fields = fieldsOf(CUSTOMER_PROFILE_COLUMNS);
      // The damaged file must not read without an error.
      await expectSyncError(
        (async () => {
          for await (const batch of readParquetRows(file, { fields, columnMappingMode: 'none', table: '/data/customers', version: 7 })) void batch;
        })(),
        {
          kind: 'delta-file',
          table: '/data/customers',
          version: 7,
          message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*cannot decode rows 0\\.\\.2999`),
          hint: /corrupt/,
        },
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
