import assert from 'node:assert/strict';
import { warehouseIdOf } from '../../src/sync/databricks/WarehouseState';

/**
 * The warehouse id a watch reads the state of comes from the connection's HTTP path, in the
 * forms the warehouse's Connection details and @databricks/sql accept; a cluster's path has
 * none (its polls are not gated).
 */
describe('warehouseIdOf: the SQL warehouse of an HTTP path', () => {
  it('reads /sql/1.0/warehouses/<id>, with or without the leading slash, a trailing slash or ?o=<workspace>', () => {
    assert.equal(warehouseIdOf('/sql/1.0/warehouses/1234abcd5678ef90'), '1234abcd5678ef90');
    assert.equal(warehouseIdOf('sql/1.0/warehouses/1234abcd5678ef90/'), '1234abcd5678ef90');
    assert.equal(warehouseIdOf('/sql/1.0/warehouses/1234abcd5678ef90?o=6051921418418893'), '1234abcd5678ef90');
  });

  it('reads the older /sql/1.0/endpoints/<id>', () => {
    assert.equal(warehouseIdOf('/sql/1.0/endpoints/abc123'), 'abc123');
  });

  it("a cluster's path (sql/protocolv1) names no warehouse", () => {
    assert.equal(warehouseIdOf('sql/protocolv1/o/6051921418418893/0123-456789-abcdefgh'), undefined);
    assert.equal(warehouseIdOf('/sql/1.0/warehouses/'), undefined);
  });
});
