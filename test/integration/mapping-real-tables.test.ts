import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { descriptionToText } from '../../src/cli/formatDescription';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { resolveColumns } from '../../src/sync/mapping/resolveColumns';
import { buildMapping } from '../builders/mappings';
import { requireSharedTable } from '../helpers/sharedTables';

describe('mapping: resolveColumns on real Delta schemas', () => {
  it('delta-kernel-rs/parquet-all-types: every column gets the documented Postgres type', async function () {
    const dir = requireSharedTable(this, 'delta-kernel-rs/parquet-all-types');
    const schema = (await (await DeltaTable.open(dir)).snapshot()).describe().schema;
    const mapping = buildMapping({
      name: 'all-types',
      source: dir,
      target: { connection: 'sandbox', table: 'all_types' },
      columns: { rename: { TimestampNTZType: 'ts_ntz' }, exclude: ['map_of_arrays'] },
    });
    const cols = resolveColumns(mapping, schema);
    assert.deepEqual(
      Object.fromEntries(cols.map((c) => [c.name, c.pgType])),
      {
        ByteType: 'smallint',
        ShortType: 'smallint',
        IntegerType: 'integer',
        LongType: 'bigint',
        FloatType: 'real',
        DoubleType: 'double precision',
        decimal: 'numeric(10,2)',
        BooleanType: 'boolean',
        StringType: 'text',
        BinaryType: 'bytea',
        DateType: 'date',
        TimestampType: 'timestamptz',
        ts_ntz: 'timestamp',
        nested_struct: 'jsonb',
        array_of_prims: 'jsonb',
        array_of_arrays: 'jsonb',
        array_of_structs: 'jsonb',
        map_of_prims: 'jsonb',
        map_of_rows: 'jsonb',
      },
    );
  });

});
