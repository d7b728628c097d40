import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeltaTableWriter } from '../fixtures/DeltaTableWriter';
import type { Row } from '../sync/delta/types';

/**
 * Writes a small CDF-enabled `orders` table into `<dir>/orders` with four commits
 * (create, insert, update, delete) so a new user can try preview and sync without data of
 * their own. Returns the table path; an existing sample is left as it is.
 */
export async function writeSampleTable(dir: string): Promise<string> {
  const tablePath = path.join(dir, 'orders');
  if (fs.existsSync(path.join(tablePath, '_delta_log'))) return tablePath;
  const w = await DeltaTableWriter.create(tablePath, {
    name: 'orders',
    description: 'Sample table written by Delta Sync',
    columns: [
      { name: 'order_id', type: { kind: 'primitive', name: 'long' }, nullable: false },
      { name: 'customer', type: { kind: 'primitive', name: 'string' } },
      { name: 'amount', type: { kind: 'decimal', precision: 10, scale: 2 } },
      { name: 'status', type: { kind: 'primitive', name: 'string' } },
      { name: 'ordered_at', type: { kind: 'primitive', name: 'timestamp' } },
    ],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
  });
  const start = Date.UTC(2026, 0, 1) * 1000; // microseconds
  const rows: Row[] = [];
  for (let i = 1; i <= 50; i++) {
    rows.push({
      order_id: BigInt(i),
      customer: `customer-${(i % 7) + 1}`,
      amount: `${(i * 13) % 500}.${String(i % 100).padStart(2, '0')}`,
      status: 'new',
      ordered_at: BigInt(start) + BigInt(i) * 3_600_000_000n,
    });
  }
  await w.append(rows);
  await w.update('order_id', [{ order_id: 3n, status: 'shipped' }, { order_id: 7n, status: 'shipped' }]);
  await w.delete('order_id', [10n]);
  return tablePath;
}
