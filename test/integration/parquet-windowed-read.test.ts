import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FileMetaData } from 'hyparquet' with { 'resolution-mode': 'import' };
import { CUSTOMER_PROFILE_COLUMNS, customerAt } from '../../src/fixtures/customerProfiles';
import { loadHyparquet, writeParquetRows } from '../../src/fixtures/fixtureParquet';
import { readParquetRows } from '../../src/sync/delta/parquetFile';
import type { DeltaField, Row } from '../../src/sync/delta/types';

/**
 * A row group far larger than the reader's decoding window (65,536 rows), with small pages
 * and an offset index on every column, as Spark and delta-rs write them: the reader then
 * decodes it window by window. Every value must still come back exactly, in order, with
 * row indexes (for deletion vectors) counted across windows. Expected rows are recomputed
 * from the customer generator, not read back.
 */
describe('readParquetRows on a row group larger than its decoding window', function () {
  this.timeout(120_000);
  const ROWS = 150_000;
  let dir: string;
  let file: string;
  const fields: DeltaField[] = CUSTOMER_PROFILE_COLUMNS.map((c) => ({
    name: c.name,
    physicalName: c.name,
    type: c.type,
    nullable: c.nullable !== false,
    metadata: {},
  }));

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'windowed-read-'));
    file = path.join(dir, 'big-group.parquet');
    const rows: Row[] = [];
    for (let i = 1; i <= ROWS; i++) rows.push(customerAt(i));
    await writeParquetRows(file, [...CUSTOMER_PROFILE_COLUMNS], rows, { rowGroupSize: ROWS, pageSize: 3 * 1024 });
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('the file has the layout that makes the reader window: one big row group, small indexed pages', async () => {
    const hp = await loadHyparquet();
    const bytes = await fs.readFile(file);
    const metadata: FileMetaData = hp.parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    assert.equal(metadata.row_groups.length, 1);
    assert.equal(Number(metadata.row_groups[0].num_rows), ROWS);
    for (const chunk of metadata.row_groups[0].columns) {
      assert.ok(chunk.offset_index_offset && chunk.offset_index_length, `${chunk.meta_data?.path_in_schema.join('.')} has an offset index`);
    }
  });

  it('returns every row exactly and in order, in full batches', async () => {
    let index = 0;
    const sizes: number[] = [];
    for await (const batch of readParquetRows(file, { fields, columnMappingMode: 'none', batchSize: 7_000 })) {
      sizes.push(batch.length);
      for (const row of batch) {
        index++;
        assert.deepEqual(row, customerAt(index), `row ${index}`);
      }
    }
    assert.equal(index, ROWS);
    assert.ok(sizes.slice(0, -1).every((n) => n === 7_000), 'every batch but the last is full');
  });

  it('applies keepRow with row indexes counted from the start of the file across windows', async () => {
    const kept: string[] = [];
    const keep = (i: number): boolean => i % 9_973 === 0 || i === 65_535 || i === 65_536 || i === ROWS - 1;
    for await (const batch of readParquetRows(file, { fields, columnMappingMode: 'none', keepRow: keep })) {
      for (const row of batch) kept.push(String(row.customer_id));
    }
    const expected: string[] = [];
    for (let i = 0; i < ROWS; i++) if (keep(i)) expected.push(String(customerAt(i + 1).customer_id));
    assert.deepEqual(kept, expected);
  });
});
