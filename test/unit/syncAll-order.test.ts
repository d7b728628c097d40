import assert from 'node:assert/strict';
import { SyncError } from '../../src/sync/errors';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { orderMappings, runAllMappings } from '../../src/sync/run/syncAll';

/** Issue 14, point 5: the order `sync --all` runs mappings in, from their `after` lists. */

function m(name: string, after?: string[]) {
  return {
    file: `${name}.json`,
    mapping: parseMapping({ name, source: { type: 'delta', path: '/t' }, target: { connection: 'sandbox', schema: 'public', table: name }, ...(after ? { after } : {}) }),
  };
}

describe('sync --all ordering (after)', () => {
  it('puts each mapping after the ones it names, otherwise keeps the given order', () => {
    const order = orderMappings([m('c', ['b']), m('a'), m('b', ['a']), m('d')]).map((x) => x.mapping.name);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  it('refuses a cycle, naming it', () => {
    assert.throws(() => orderMappings([m('x', ['z']), m('y', ['x']), m('z', ['y'])]), (e: unknown) => {
      assert.ok(e instanceof SyncError);
      assert.equal(e.kind, 'mapping');
      assert.equal(e.setting, 'after');
      assert.match(e.message, /cycle: x -> z -> y -> x/);
      return true;
    });
  });

  it('refuses an unknown name and a name used twice', () => {
    assert.throws(() => orderMappings([m('a', ['nope'])]), /runs after "nope", but no mapping has that name/);
    assert.throws(() => orderMappings([m('a'), { ...m('a'), file: 'other.json' }]), /Two mappings are named "a" \(a.json and other.json\)/);
  });

  it('the mapping file refuses an "after" entry that is not a mapping name', () => {
    assert.throws(() => m('a', ['Not A Slug']), /after/);
  });

  it('runs past a failure and skips what runs after it, directly or not', async () => {
    const ran: string[] = [];
    const out = await runAllMappings([m('a'), m('b', ['a']), m('c', ['b']), m('d')], async (it) => {
      ran.push(it.mapping.name);
      if (it.mapping.name === 'a') throw new SyncError('target', 'boom');
      return it.mapping.name;
    });
    assert.deepEqual(ran, ['a', 'd']);
    assert.deepEqual(out.map((o) => `${o.name}:${o.status}`), ['a:failed', 'b:skipped', 'c:skipped', 'd:succeeded']);
  });
});
