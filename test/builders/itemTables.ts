import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import { long, string } from './deltaFields';

/**
 * The small "items" table many sync tests follow: `id bigint not null, name string`, with
 * the Change Data Feed on. Rows are `{ id, name: "<tag> <id>" }`.
 */
export function itemRows(a: number, b: number, tag = 'item'): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `${tag} ${i}` });
  return out;
}

/** A new items table at `dir/name` holding items `1..first` (version 1; version 0 is its creation). */
export async function newItemTable(dir: string, name: string, first: number): Promise<DeltaTableWriter> {
  const t = await DeltaTableWriter.create(path.join(dir, name), {
    columns: [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }],
    configuration: { 'delta.enableChangeDataFeed': 'true' },
  });
  await t.append(itemRows(1, first));
  return t;
}
