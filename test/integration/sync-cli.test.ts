import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable } from '../../src/fixtures/customerProfiles';
import { getTestServer, useTestDatabase } from '../helpers/postgres';
import { buildCli, runCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Acceptance 7: the CLI's sync, preview --format jsonl, status --format json and the quick
 * form (--source --target --table --key) against the real server: exit codes, output, and
 * mapping errors that name the field.
 */

interface StatusJson {
  pipeline: string;
  latestVersion: number;
  checkpoint: { version: string } | null;
  lag: number | null;
  targetExists: boolean;
  runs: { mode: string; status: string; toVersion: string | null }[];
}

describe('CLI sync / preview / status against a real server', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_cli');
  let tablePath: string;
  let latest: number;
  let dir: string;
  let mappingFile: string;
  const env = (): Record<string, string> => ({ DNS_CLI_URL: db().url });

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir();
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 400 });
    latest = await applySampleChanges(t.path);
    tablePath = t.path;
    mappingFile = await writeMappingFile(dir, 'customers', {
      name: 'cli-customers',
      source: { type: 'delta', path: tablePath },
      target: { connection: '${env:DNS_CLI_URL}', schema: 'public', table: 'customers' },
      key: ['customer_id'],
    });
  });

  it('status --format json before any sync: no checkpoint, target missing, exit 0', async () => {
    const out = await runCli(['status', '--mapping', mappingFile, '--format', 'json'], env());
    assert.equal(out.code, 0, out.stderr);
    const s = JSON.parse(out.stdout) as StatusJson;
    assert.equal(s.pipeline, 'cli-customers');
    assert.equal(s.latestVersion, latest);
    assert.equal(s.checkpoint, null);
    assert.equal(s.lag, null);
    assert.equal(s.targetExists, false);
    assert.deepEqual(s.runs, []);
  });

  it('sync --mode initial --to-version 1 creates the table and prints the DDL and counts', async () => {
    const out = await runCli(['sync', '--mapping', mappingFile, '--mode', 'initial', '--to-version', '1'], env());
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /Created the target table:\nCREATE TABLE/);
    assert.match(out.stdout, /cli-customers: initial sync to version 1 done in 1 batch\(es\): 400 inserted/);
    await assertTargetEquals(db().url, { schema: 'public', name: 'customers' }, tablePath, 1, { key: ['customer_id'] });
  });

  it('preview --format jsonl prints one JSON row per change and the totals on stderr; the following sync applies exactly those totals', async () => {
    const pv = await runCli(['preview', '--mapping', mappingFile, '--format', 'jsonl'], env());
    assert.equal(pv.code, 0, pv.stderr);
    const rows = pv.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; key: { customer_id: string } });
    const m = /Preview \(versions 2\.\.(\d+)\): (\d+) insert, (\d+) update, (\d+) delete, (\d+) unchanged/.exec(pv.stderr);
    assert.ok(m, pv.stderr);
    assert.equal(Number(m[1]), latest);
    const [ins, upd, del] = [Number(m[2]), Number(m[3]), Number(m[4])];
    const count = (a: string): number => rows.filter((r) => r.action === a).length;
    assert.deepEqual({ ins: count('insert'), upd: count('update'), del: count('delete') }, { ins, upd, del });
    assert.ok(ins > 0 && upd > 0 && del > 0);

    const out = await runCli(['sync', '--mapping', mappingFile], env());
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`cli-customers: incremental sync to version ${latest} done in \\d+ batch\\(es\\): ${ins} inserted, ${upd} updated, ${del} deleted`));
    await assertTargetEquals(db().url, { schema: 'public', name: 'customers' }, tablePath, latest, { key: ['customer_id'] });

    const again = await runCli(['sync', '--mapping', mappingFile], env());
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`cli-customers: up to date at version ${latest}`));
  });

  it('status --format json after the syncs: checkpoint at the latest version, no lag, both runs succeeded', async () => {
    const out = await runCli(['status', '--mapping', mappingFile, '--format', 'json'], env());
    assert.equal(out.code, 0, out.stderr);
    const s = JSON.parse(out.stdout) as StatusJson;
    assert.equal(s.checkpoint?.version, String(latest));
    assert.equal(s.lag, 0);
    assert.equal(s.targetExists, true);
    assert.deepEqual(s.runs.map((r) => [r.mode, r.status, r.toVersion]), [
      ['incremental', 'succeeded', String(latest)],
      ['initial-swap', 'succeeded', '1'],
    ]);
    const text = await runCli(['status', '--mapping', mappingFile], env());
    assert.equal(text.code, 0);
    assert.match(text.stdout, new RegExp(`checkpoint: version ${latest}`));
    assert.match(text.stdout, /lag: +0 version\(s\) behind/);
  });

  it('the quick form (--source --target --table --key) syncs, previews and reports status without a mapping file', async () => {
    const quick = ['--source', tablePath, '--target', '${env:DNS_CLI_URL}', '--table', 'public.quick_customers', '--key', 'customer_id'];
    const pv = await runCli(['preview', ...quick, '--format', 'jsonl', '--limit', '3'], env());
    assert.equal(pv.code, 0, pv.stderr);
    assert.equal(pv.stdout.trim().split('\n').length, 3);
    assert.match(pv.stderr, /initial load of the snapshot at version \d+\): \d+ insert.*target table does not exist yet/);
    const out = await runCli(['sync', ...quick], env());
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`initial sync to version ${latest} done`));
    await assertTargetEquals(db().url, { schema: 'public', name: 'quick_customers' }, tablePath, latest, { key: ['customer_id'] });
    const st = await runCli(['status', ...quick, '--format', 'json'], env());
    assert.equal(st.code, 0, st.stderr);
    assert.equal((JSON.parse(st.stdout) as StatusJson).checkpoint?.version, String(latest));
  });

  it('preview prints the pre-apply warnings: a key that repeats is found before anything is applied', async () => {
    const quick = ['--source', tablePath, '--target', '${env:DNS_CLI_URL}', '--table', 'public.by_segment', '--key', 'segment'];
    const pv = await runCli(['preview', ...quick, '--limit', '1'], env());
    assert.equal(pv.code, 0, pv.stderr);
    assert.match(pv.stdout, /^warning: \d+ row\(s\): Several source rows have the same key.* First: segment=/m);
  });

  it('preview of an up-to-date pipeline says it is up to date at the latest version, not an empty range "versions N+1..N"', async () => {
    const quick = ['--source', tablePath, '--target', '${env:DNS_CLI_URL}', '--table', 'public.uptodate_customers', '--key', 'customer_id'];
    const out = await runCli(['sync', ...quick], env());
    assert.equal(out.code, 0, out.stderr);
    const pv = await runCli(['preview', ...quick], env());
    assert.equal(pv.code, 0, pv.stderr);
    assert.match(pv.stdout, new RegExp(`^Preview \\(up to date at version ${latest}\\): 0 insert, 0 update, 0 delete`));
    assert.doesNotMatch(pv.stdout, /versions \d+\.\.\d+/);
  });

  it('--table with more than one dot is refused and names --table; nothing is written (public.x.y used to write public.x)', async () => {
    const out = await runCli(['sync', '--source', tablePath, '--target', '${env:DNS_CLI_URL}', '--table', 'public.dotted.extra', '--key', 'customer_id'], env());
    assert.equal(out.code, 1, out.stdout);
    assert.match(out.stderr, /--table 'public\.dotted\.extra' must be schema\.table or table/);
    assert.equal(out.stdout, '');
    const c = new pg.Client({ connectionString: db().url });
    await c.connect();
    try {
      const r = await c.query<{ n: string }>("select count(*) as n from information_schema.tables where table_name = 'dotted'");
      assert.equal(r.rows[0]?.n, '0');
    } finally {
      await c.end();
    }
  });

  it('--target URL with a password is refused with the CLI wording and a hint that works: the same URL through ${env:VAR} syncs', async () => {
    const u = new URL(db().url);
    u.username = u.username || 'postgres';
    u.password = 'not-on-the-command-line';
    const quick = ['--source', tablePath, '--table', 'public.pw_customers', '--key', 'customer_id'];
    const out = await runCli(['sync', ...quick, '--target', u.toString()], env());
    assert.equal(out.code, 1, out.stdout);
    assert.match(out.stderr, /--target contains a password/);
    assert.match(out.stderr, /Hint: .*--target '\$\{env:DATABASE_URL\}'.*PGPASSWORD.*~\/\.pgpass/);
    assert.doesNotMatch(out.stderr, /workspace|saved connection/);
    assert.doesNotMatch(out.stderr, /not-on-the-command-line/);
    // The hint's first way: the URL, password included, in an environment variable.
    const viaEnv = await runCli(['sync', ...quick, '--target', '${env:DATABASE_URL}'], { ...env(), DATABASE_URL: u.toString() });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, new RegExp(`initial sync to version ${latest} done`));
  });

  it("the hint's other ways work: a --target URL without its password connects, for a role that needs one, with PGPASSWORD or a .pgpass line", async function () {
    const server = await getTestServer();
    if (server.kind === 'external') this.skip();
    const role = 'dns_cli_pw_user';
    const password = 'cli-pass-0';
    // The throwaway cluster trusts every login; require a password for this role only.
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN PASSWORD '${password}'; END IF; END $$`);
      const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      const text = await fs.readFile(hba, 'utf8');
      if (!text.includes(role)) {
        await fs.writeFile(hba, `host all ${role} 127.0.0.1/32 scram-sha-256\nhost all ${role} ::1/128 scram-sha-256\n${text}`);
        await admin.query('SELECT pg_reload_conf()');
      }
    } finally {
      await admin.end();
    }
    const owner = new pg.Client({ connectionString: db().url });
    await owner.connect();
    try {
      await owner.query(`GRANT ALL ON DATABASE "${db().database}" TO ${role}`);
      await owner.query(`GRANT ALL ON SCHEMA public TO ${role}`);
      await owner.query('CREATE SCHEMA IF NOT EXISTS delta_neon_sync');
      await owner.query(`GRANT ALL ON SCHEMA delta_neon_sync TO ${role}`);
      await owner.query(`GRANT ALL ON ALL TABLES IN SCHEMA delta_neon_sync TO ${role}`);
      await owner.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA delta_neon_sync TO ${role}`);
    } finally {
      await owner.end();
    }
    const u = new URL(db().url);
    u.username = role;
    u.password = '';
    const status = ['status', '--source', tablePath, '--target', u.toString(), '--table', 'public.pw_status', '--key', 'customer_id', '--format', 'json'];
    // The CLI inherits this process's environment; PGPASSWORD set at all (even empty) turns .pgpass off.
    if (process.env.PGPASSWORD !== undefined) this.skip();
    const noEnv = { ...env(), PGPASSFILE: path.join(dir, 'no-such-pgpass') };
    const without = await runCli(status, noEnv);
    assert.equal(without.code, 1, 'the role needs a password');
    assert.match(without.stderr, /The server asks for a password, but the connection has none/);
    assert.match(without.stderr, /Hint: .*PGPASSWORD.*~\/\.pgpass/);
    const viaPgpassword = await runCli(status, { ...noEnv, PGPASSWORD: password });
    assert.equal(viaPgpassword.code, 0, viaPgpassword.stderr);
    assert.equal((JSON.parse(viaPgpassword.stdout) as StatusJson).targetExists, false);
    const pgpass = path.join(dir, 'pgpass');
    await fs.writeFile(pgpass, `${u.hostname}:${u.port}:${db().database}:${role}:${password}\n`, { mode: 0o600 });
    const viaPgpass = await runCli(status, { ...noEnv, PGPASSFILE: pgpass });
    assert.equal(viaPgpass.code, 0, viaPgpass.stderr);
  });

  it('a mapping file with a bad field exits 1 and names the field; so does an unknown field', async () => {
    const bad = await writeMappingFile(dir, 'bad', {
      name: 'bad',
      source: { type: 'delta', path: tablePath },
      target: { connection: '${env:DNS_CLI_URL}', schema: 'public', table: 'bad' },
      batch: { maxRows: -5 },
    });
    const out = await runCli(['sync', '--mapping', bad], env());
    assert.equal(out.code, 1);
    assert.match(out.stderr, /batch\.maxRows/);
    assert.equal(out.stdout, '');
    const unknown = await writeMappingFile(dir, 'unknown', {
      name: 'unknown',
      source: { type: 'delta', path: tablePath },
      target: { connection: '${env:DNS_CLI_URL}', schema: 'public', table: 'unknown' },
      colums: { exclude: ['email'] },
    });
    const out2 = await runCli(['status', '--mapping', unknown], env());
    assert.equal(out2.code, 1);
    assert.match(out2.stderr, /colums/);
  });

  it('usage errors exit 1 with the usage line; an unset ${env:VAR} connection names the variable', async () => {
    const out = await runCli(['sync', '--mapping', mappingFile, '--mode', 'sideways'], env());
    assert.equal(out.code, 1);
    assert.match(out.stderr, /--mode must be initial, incremental or auto/);
    assert.match(out.stderr, /Usage: delta-neon-sync sync --mapping FILE/);
    const noEnv = await runCli(['status', '--mapping', mappingFile], { DNS_CLI_URL: '' });
    assert.equal(noEnv.code, 1);
    assert.match(noEnv.stderr, /DNS_CLI_URL/);
    assert.match(noEnv.stderr, /Hint:/);
  });
});
