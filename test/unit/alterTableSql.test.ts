import { strict as assert } from 'node:assert';
import { renderTable } from '../../src/cli/commands/previewCommand';
import { alterTableSql } from '../../src/sync/postgres/alterTableSql';
import type { PreviewReport } from '../../src/sync/ports/reports';
import { dryRunReport } from '../../src/views/reports';

describe('schema-drift DDL: the one renderer, and where it is shown', () => {
  const t = { schema: 'sales', name: 'Order Lines' };

  it('renders each alteration with quoted identifiers and a cast for retypes', () => {
    assert.equal(alterTableSql(t, { alter: 'add-column', column: 'note', pgType: 'text' }), 'ALTER TABLE "sales"."Order Lines" ADD COLUMN "note" text');
    assert.equal(alterTableSql(t, { alter: 'rename-column', column: 'name', to: 'full "name"' }), 'ALTER TABLE "sales"."Order Lines" RENAME COLUMN "name" TO "full ""name"""');
    assert.equal(
      alterTableSql(t, { alter: 'retype-column', column: 'qty', pgType: 'bigint', from: 'integer' }),
      'ALTER TABLE "sales"."Order Lines" ALTER COLUMN "qty" TYPE bigint USING "qty"::bigint',
    );
    assert.equal(alterTableSql(t, { alter: 'drop-not-null', column: 'code' }), 'ALTER TABLE "sales"."Order Lines" ALTER COLUMN "code" DROP NOT NULL');
    assert.equal(alterTableSql({ name: 'x' }, { alter: 'drop-column', column: 'old' }), 'ALTER TABLE "x" DROP COLUMN "old"');
    assert.equal(alterTableSql(t, { alter: 'add-column', column: '_v', pgType: 'bigint', ifNotExists: true }), 'ALTER TABLE "sales"."Order Lines" ADD COLUMN IF NOT EXISTS "_v" bigint');
  });

  it("the CLI preview lists the DDL the sync runs first; the dry run's report has it as SQL", () => {
    const ddl = ['ALTER TABLE "public"."t" RENAME COLUMN "name" TO "full_name"'];
    const report: PreviewReport = {
      rows: [], totals: { insert: 0, update: 1, delete: 0, unchanged: 0, 'delete-missing': 0 }, matching: 1,
      mode: 'incremental', fromVersion: 2, toVersion: 5, targetMissing: false, alterations: ddl,
    };
    assert.match(renderTable(report), /The sync will first change the table, in the transaction of its first batch:\nALTER TABLE "public"\."t" RENAME COLUMN "name" TO "full_name";/);
    assert.doesNotMatch(renderTable({ ...report, alterations: undefined }), /change the table/);
    const result = { inserted: 0, updated: 1, deleted: 0, unchanged: 0, deleteMissing: 0, rejected: [], staged: { upserts: 1, deletes: 0 } };
    const shown = dryRunReport('m', { fromVersion: 2, toVersion: 5, alterations: ddl, result });
    const schema = shown.grids.find((g) => g.id === 'schema');
    assert.ok(schema, 'the dry-run report has a schema-changes grid');
    assert.match(schema.title, /Schema changes run first: 1/);
    assert.deepEqual(schema.rows, [['ALTER TABLE "public"."t" RENAME COLUMN "name" TO "full_name";']]);
    assert.equal(dryRunReport('m', { fromVersion: 2, toVersion: 5, result }).grids.find((g) => g.id === 'schema'), undefined);
  });
});
