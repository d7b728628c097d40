import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MappingsModel, mappingSummary } from '../../src/views/MappingsModel';
import { slugFor } from '../../src/views/slugFor';

describe('mappings model (.delta-sync files)', () => {
  let ws: string;
  beforeEach(() => {
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mappings-model-'));
  });
  afterEach(() => fs.rmSync(ws, { recursive: true, force: true }));

  it('shows nothing when the mappings folder does not exist yet', async () => {
    assert.deepEqual(await new MappingsModel(() => [ws], () => '.delta-sync').children(), []);
  });

  it('lists valid mappings with a summary and invalid files with their error, sorted by file', async () => {
    const dir = path.join(ws, '.delta-sync');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ name: 'orders', source: { type: 'delta', path: '../tables/orders' }, target: { connection: 'neon', table: 'orders' } }));
    fs.writeFileSync(path.join(dir, 'a.json'), '{ "name": "x", }');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    const nodes = await new MappingsModel(() => [ws], () => '.delta-sync').children();
    assert.deepEqual(nodes.map((n) => n.kind), ['invalid', 'mapping']);
    const [bad, good] = nodes;
    assert.match(bad?.kind === 'invalid' ? bad.error : '', /not valid JSON/);
    assert.ok(good?.kind === 'mapping');
    assert.equal(good.mapping.source.type === 'delta' && good.mapping.source.path, path.join(ws, 'tables', 'orders'));
    assert.equal(mappingSummary(good.mapping), 'orders → neon:public.orders');
  });

  it('derives mapping names that pass the schema from any folder name', () => {
    assert.equal(slugFor('Customer Profiles'), 'customer_profiles');
    assert.equal(slugFor('2024-sales'), 't_2024_sales');
    assert.equal(slugFor('___'), 't_table');
  });
});
