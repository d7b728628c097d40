import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { withoutDeltaFolder } from '../../src/platform/deltaFolderList';
import { DeltaTableInspector } from '../../src/views/DeltaTableInspector';
import { askKeyColumns, isScalarField, sourcePickDescription, type KeyPickItem } from '../../src/views/createMappingSteps';
import { SourcesModel } from '../../src/views/SourcesModel';
import { array, decimal, field, long, map, string, struct } from '../builders/deltaFields';
import { tempDir } from '../helpers/syncHarness';

/**
 * Issue 13 point 7 (Create Mapping keeps answers, offers only scalar keys, shows each
 * source's version and CDF state) and Remove Folder for Sources.
 */

const FIELDS = [
  field('address', struct(field('city', string()))),
  field('tags', array(string())),
  field('attrs', map(string(), string())),
  field('order_id', long(), { nullable: false }),
  field('amount', decimal(12, 2)),
  field('note', string()),
];

describe('Create Mapping steps', () => {
  it('offers only scalar columns as keys and names the others', async () => {
    const seen: Array<{ labels: string[]; picked: string[]; placeHolder: string }> = [];
    const keys = await askKeyColumns(async (items, o) => {
      seen.push({ labels: items.map((i) => i.label), picked: items.filter((i) => i.picked).map((i) => i.label), placeHolder: o.placeHolder });
      return items.filter((i) => i.picked);
    }, FIELDS, 'Create Mapping (4/7): key columns');
    assert.deepEqual(keys, ['order_id']);
    assert.deepEqual(seen[0]?.labels, ['order_id', 'amount', 'note']);
    assert.deepEqual(seen[0]?.picked, ['order_id']);
    assert.match(seen[0]?.placeHolder ?? '', /not offered \(struct, array or map\): address, tags, attrs/);
    assert.deepEqual(FIELDS.filter(isScalarField).map((f) => f.name), ['order_id', 'amount', 'note']);
  });

  it('an empty key choice re-asks the key step only (the guess preselected again) instead of ending the flow', async () => {
    const answers: Array<(items: KeyPickItem[]) => KeyPickItem[] | undefined> = [() => [], () => [], (items) => items.filter((i) => i.label === 'note' || i.label === 'amount')];
    const asked: Array<{ placeHolder: string; picked: string[] }> = [];
    const keys = await askKeyColumns(async (items, o) => {
      asked.push({ placeHolder: o.placeHolder, picked: items.filter((i) => i.picked).map((i) => i.label) });
      return answers.shift()!(items);
    }, FIELDS, 't');
    assert.deepEqual(keys, ['amount', 'note']);
    assert.equal(asked.length, 3);
    assert.match(asked[1]?.placeHolder ?? '', /^Pick at least one key column/);
    assert.deepEqual(asked[2]?.picked, ['order_id']);
    const cancelled = await askKeyColumns(async () => undefined, FIELDS, 't');
    assert.equal(cancelled, undefined);
  });

  it('describes each source with its version and CDF state, read from the table', async () => {
    const dir = await tempDir('dns-cm-');
    const cols = [{ name: 'id', type: long(), nullable: false }, { name: 'name', type: string() }];
    const w = await DeltaTableWriter.create(path.join(dir, 'with_cdf'), { columns: cols, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append([{ id: 1n, name: 'a' }]);
    const v = await w.append([{ id: 2n, name: 'b' }]);
    const plain = await DeltaTableWriter.create(path.join(dir, 'plain'), { columns: cols });
    const pv = await plain.append([{ id: 1n, name: 'a' }]);
    await fs.mkdir(path.join(dir, 'broken', '_delta_log'), { recursive: true });
    // As the flow reads them: the table rows of the Sources view below a configured folder.
    const model = new SourcesModel(() => [dir], new DeltaTableInspector());
    const [folder] = await model.children();
    assert.equal(folder?.kind, 'folder');
    const tables = (await model.children(folder)).flatMap((n) => (n.kind === 'table' ? [[n.label, sourcePickDescription(n.description, n.error)]] : []));
    const byName = Object.fromEntries(tables);
    assert.equal(byName.with_cdf, `v${v} · CDF on · 2 rows`);
    assert.equal(byName.plain, `v${pv} · CDF off · 1 row`);
    assert.match(byName.broken ?? '', /^cannot read: /);
    assert.equal(sourcePickDescription(null, 'no _delta_log'), 'cannot read: no _delta_log');
  });
});

describe('Remove Folder from Sources', () => {
  it('removes the folder given absolute or as configured (relative to the workspace), keeping the others', () => {
    const ws = path.join(path.sep, 'ws');
    const list = ['tables', path.join(ws, 'other'), '/abs/lake', 42];
    assert.deepEqual(withoutDeltaFolder(list, path.join(ws, 'tables'), ws), [path.join(ws, 'other'), '/abs/lake']);
    assert.deepEqual(withoutDeltaFolder(list, '/abs/lake', ws), ['tables', path.join(ws, 'other')]);
    assert.deepEqual(withoutDeltaFolder(list, '/nowhere', ws), ['tables', path.join(ws, 'other'), '/abs/lake']);
  });
});
