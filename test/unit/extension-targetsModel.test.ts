import * as assert from 'node:assert/strict';
import { TargetsModel, summarizeConnectionString } from '../../src/views/TargetsModel';
import { expectSyncError } from '../helpers/expectSyncError';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';

const URL_WITH_PASSWORD = 'postgresql://alice:s3cr3t-pw@ep-cool-1.eu-central-1.aws.neon.tech:5432/app?sslmode=require';

describe('targets model (connections)', () => {
  it('always lists the embedded sandbox first, even with no saved connections', () => {
    const m = new TargetsModel(new MemoryState(), new MemorySecrets());
    const nodes = m.children();
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0]?.kind, 'sandbox');
  });

  it('keeps the connection string only in secret storage, never in state', async () => {
    const state = new MemoryState();
    const secrets = new MemorySecrets();
    const m = new TargetsModel(state, secrets, () => 42);
    await m.add('neon-prod', URL_WITH_PASSWORD);
    assert.ok(!JSON.stringify([...state.data.values()]).includes('s3cr3t-pw'));
    assert.ok(!JSON.stringify([...state.data.values()]).includes('alice'));
    assert.equal(await m.connectionString('neon-prod'), URL_WITH_PASSWORD);
    assert.deepEqual(m.connections(), [{ name: 'neon-prod', summary: 'ep-cool-1.eu-central-1.aws.neon.tech:5432/app', addedAt: 42 }]);
  });

  it('refuses duplicate names, the sandbox name and names a mapping cannot reference', async () => {
    const m = new TargetsModel(new MemoryState(), new MemorySecrets());
    await m.add('a', 'postgres://h/db');
    assert.ok(m.validateName('a'));
    assert.ok(m.validateName('sandbox'));
    assert.ok(m.validateName('has space'));
    assert.ok(m.validateName('-leading'));
    assert.equal(m.validateName('b.c_d-1'), undefined);
    await expectSyncError(m.add('a', 'postgres://h/db'), { kind: 'usage' });
  });

  it('rejects strings that are not postgres URLs before storing anything', async () => {
    const secrets = new MemorySecrets();
    const m = new TargetsModel(new MemoryState(), secrets);
    await expectSyncError(m.add('x', 'mysql://h/db'), { kind: 'usage' });
    await expectSyncError(m.add('y', 'host=localhost dbname=x'), { kind: 'usage' });
    assert.equal(secrets.data.size, 0);
  });

  it('removing a connection deletes its secret too', async () => {
    const secrets = new MemorySecrets();
    const m = new TargetsModel(new MemoryState(), secrets);
    await m.add('gone', URL_WITH_PASSWORD);
    await m.remove('gone');
    assert.deepEqual(m.connections(), []);
    assert.equal(secrets.data.size, 0);
    await expectSyncError(m.connectionString('gone'), { kind: 'auth' });
  });

  it('summaries show host and database without user or password', () => {
    assert.equal(summarizeConnectionString('postgres://u:p@db.example.com/my%20db'), 'db.example.com/my db');
    assert.equal(summarizeConnectionString('postgresql://localhost'), 'localhost/(default database)');
  });
});
