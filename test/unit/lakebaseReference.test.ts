import assert from 'node:assert/strict';
import { parseLakebaseReference } from '../../src/sync/mapping/lakebaseReference';
import { summarizeConnectionString } from '../../src/views/TargetsModel';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';

const EP = 'projects/proj-1/branches/br-main/endpoints/ep-primary';

function problem(ref: string): string {
  const r = parseLakebaseReference(ref);
  assert.ok(!r.ok, `${ref} should not parse`);
  return r.problem;
}

describe('lakebase: target references', () => {
  it('reads the endpoint, database, profile, host, role, port and passes connection parameters on', () => {
    const r = parseLakebaseReference(`lakebase:${EP}/my%20db?profile=prod&host=ep-x.database.us-east-1.cloud.databricks.com&user=sp-1&port=6543&sslmode=verify-full&connect_timeout=20`);
    assert.deepEqual(r, {
      ok: true,
      ref: {
        workspace: 'prod',
        endpoint: EP,
        database: 'my db',
        host: 'ep-x.database.us-east-1.cloud.databricks.com',
        port: 6543,
        user: 'sp-1',
        params: { sslmode: 'verify-full', connect_timeout: '20' },
      },
    });
  });

  it('takes the profile written in front of the endpoint as well, and no profile at all', () => {
    const front = parseLakebaseReference(`lakebase:prod/${EP}/db`);
    assert.ok(front.ok && front.ref.workspace === 'prod' && front.ref.database === 'db');
    const none = parseLakebaseReference(`lakebase:${EP}/db`);
    assert.ok(none.ok && none.ref.workspace === undefined);
    assert.match(problem(`lakebase:prod/${EP}/db?profile=dev`), /profile is given twice/);
  });

  it('reads a Lakebase Provisioned database instance as <instance>/<database>, profile and host as parameters', () => {
    assert.deepEqual(parseLakebaseReference('lakebase:sales-oltp/databricks_postgres?profile=prod&port=5433'), {
      ok: true,
      ref: { workspace: 'prod', instance: 'sales-oltp', database: 'databricks_postgres', port: 5433, params: {} },
    });
    assert.match(problem('lakebase:sales-oltp'), /database name is missing after the instance/);
    assert.match(problem('lakebase:sales oltp/db'), /database instance name "sales oltp"/);
  });

  it('refuses a password, unknown parameters, a missing database and a short endpoint name, saying what the form is', () => {
    assert.match(problem(`lakebase:${EP}/db?password=x`), /must not contain a password/);
    assert.match(problem(`lakebase:${EP}/db?pasword=x`), /unknown parameter "pasword"/);
    assert.match(problem(`lakebase:${EP}`), /database name is missing/);
    assert.match(problem('lakebase:prod/projects/proj-1/db'), /full resource name projects\/<project>\/branches\/<branch>\/endpoints\/<endpoint>/);
    assert.match(problem('lakebase:prod/ep-primary/db'), /unexpected "\/db" after the database name; the form is .* \(or lakebase:<database instance>\/<database>/);
    assert.match(problem(`lakebase:${EP}/db?port=99999`), /not a port number/);
    assert.match(problem(`lakebase:${EP}/db/extra`), /unexpected "\/extra"/);
    assert.match(problem(`lakebase:${EP}/db`.replace('ep-primary', 'ep primary')), /endpoint id "ep primary"/);
  });

  it('is a valid target.connection in a mapping; a bad one is a mapping error on target.connection', () => {
    const m = buildMapping({ target: { connection: `lakebase:${EP}/db?profile=prod&host=h.example.com` } });
    assert.equal(m.target.connection, `lakebase:${EP}/db?profile=prod&host=h.example.com`);
    expectSyncError(() => buildMapping({ target: { connection: `lakebase:${EP}/db?password=secret` } }), {
      kind: 'mapping',
      message: /target\.connection.*must not contain a password/s,
    });
  });
});

describe('a saved lakebase: target in the Targets tree', () => {
  it('is summarized by host, database and profile, and a bad one is refused with the reason', () => {
    assert.equal(summarizeConnectionString(`lakebase:${EP}/db?profile=prod&host=h.example.com`), 'lakebase h.example.com/db (profile prod)');
    expectSyncError(() => summarizeConnectionString(`lakebase:${EP}/db?password=x`), { kind: 'usage', message: /must not contain a password/ });
  });
});
