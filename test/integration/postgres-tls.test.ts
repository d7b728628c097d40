import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { openSource } from '../../src/sync/open/openSource';
import { mappingTarget, openTarget } from '../../src/sync/open/openTarget';
import type { Logger } from '../../src/sync/ports/Logger';
import type { SyncEvent } from '../../src/sync/ports/events';
import { ChannelBindingRequiredClient } from '../../src/sync/postgres/channelBinding';
import { createPool } from '../../src/sync/postgres/createPool';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { long, string } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { freePort, useTestDatabase } from '../helpers/postgres';
import { tempDir } from '../helpers/syncHarness';
import { startTcpProxy } from '../helpers/tcpProxy';
import type { TcpProxy } from '../helpers/tcpProxy';
import { startTlsServer } from '../helpers/tlsServer';
import type { TlsServer } from '../helpers/tlsServer';

/**
 * Issue 12 point 5 (and issue 11's untested sslrootcert hint): connections as Neon users
 * meet them. A throwaway server with TLS only and SCRAM-SHA-256 passwords (test/helpers/
 * tlsServer.ts, certificates made with openssl here), reached through the product's own
 * URL handling (openTarget -> createPool) and error classification: verify-full with
 * sslrootcert, require, channel_binding=require, the certificate failures a user meets (and
 * their hints, followed), and a compute that refuses connections while it starts.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];

function rows(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `item ${i}` });
  return out;
}

interface Opened {
  runner: SyncRunner;
  events: SyncEvent[];
  close(): Promise<void>;
}

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('connections as Neon users meet them: TLS, SCRAM, channel binding, a compute that starts (real server)', function () {
  this.timeout(60_000);
  let tls: TlsServer;
  let table: DeltaTableWriter;

  before(async function () {
    this.timeout(120_000);
    tls = await startTlsServer();
    const dir = await tempDir();
    table = await DeltaTableWriter.create(path.join(dir, 'items'), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await table.append(rows(1, 20)); // v1
    await table.append(rows(21, 25)); // v2
  });

  after(async () => {
    await tls?.stop();
  });

  const mappingFor = (name: string): Mapping => buildMapping({ name, source: table.path, target: name, key: ['id'] });

  /** Opens the mapping's target the way the CLI and the extension do: the URL through openTarget. */
  async function open(mapping: Mapping, url: string, logger: Logger = quiet): Promise<Opened> {
    const target = await openTarget(url, { env: {} });
    const source = await openSource(mapping.source);
    const events: SyncEvent[] = [];
    const runner = new SyncRunner(mapping, source, mappingTarget(target.pool, mapping.target, logger), logger);
    return { runner, events, close: () => target.close() };
  }

  /** Initial load to v1, a preview of v2 (5 inserts), the incremental sync, and the rows read back over `url`. */
  async function syncAndPreview(name: string, url: string): Promise<void> {
    const o = await open(mappingFor(name), url);
    try {
      const first = await o.runner.run({ toVersion: 1, retryForMs: 0 });
      assert.equal(first.status, 'succeeded');
      assert.equal(first.rowsRead, 20);
      const preview = await o.runner.preview();
      assert.equal(preview.mode, 'incremental');
      assert.deepEqual([preview.fromVersion, preview.toVersion], [2, 2], 'the change after the checkpoint (v1)');
      assert.equal(preview.totals.insert, 5);
      assert.deepEqual(preview.rows.map((r) => r.action).sort(), ['insert', 'insert', 'insert', 'insert', 'insert']);
      const second = await o.runner.run({ retryForMs: 0 });
      assert.equal(second.inserted, 5);
    } finally {
      await o.close();
    }
    const pool = createPool(url, { max: 1 });
    try {
      const r = await pool.query<{ n: string; ssl: boolean }>(`SELECT (SELECT count(*) FROM public.${name})::text AS n, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl`);
      assert.deepEqual(r.rows[0], { n: '25', ssl: true });
    } finally {
      await pool.end();
    }
  }

  it('sslmode=verify-full with sslrootcert=<CA file>: sync and preview over a verified connection, SCRAM password', async () => {
    await syncAndPreview('tls_verify_full', tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }));
  });

  it('sslmode=require: encrypted, certificate not checked (a CA this machine does not know is fine)', async () => {
    await syncAndPreview('tls_require', tls.url({ sslmode: 'require' }));
  });

  it('channel_binding=require (as in Neon connection strings): the SCRAM login is bound to the TLS connection, and sync and preview work', async () => {
    const url = tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile, channel_binding: 'require' });
    await syncAndPreview('tls_channel_binding', url);
    const pool = createPool(url, { max: 1 });
    try {
      const client = await pool.connect();
      try {
        assert.ok(ChannelBindingRequiredClient.isBound(client), 'logged in with SCRAM-SHA-256-PLUS');
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('channel_binding=require against a login that is not bound (plain-text password, trust): refused before any password is sent, naming channel_binding', async () => {
    const cases = [
      { user: tls.plainRole, why: /the server asked for a plain-text password/ },
      { user: tls.trustRole, why: /the server let the client in without a password exchange/ },
    ];
    for (const c of cases) {
      const o = await open(mappingFor('tls_cb_refused'), tls.url({ sslmode: 'require', channel_binding: 'require' }, { user: c.user }));
      try {
        const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), {
          kind: 'auth',
          setting: 'channel_binding',
          message: new RegExp(`Refused to log in to localhost:${tls.port}: channel_binding=require, but .*No password was sent`),
          hint: /SCRAM-SHA-256-PLUS.*channel_binding=prefer/,
        });
        assert.match(err.message, c.why);
        assert.notEqual(err.retry, 'auto');
      } finally {
        await o.close();
      }
      // The hint's way out: channel_binding=prefer lets the same login in (the refusal came from the binding rule).
      const ok = await open(mappingFor('tls_cb_refused'), tls.url({ sslmode: 'require', channel_binding: 'prefer' }, { user: c.user }));
      try {
        // The first role's run loads v1; the second finds the pipeline already there.
        const r = await ok.runner.run({ toVersion: 1, retryForMs: 0 });
        assert.equal(r.status, c.user === tls.plainRole ? 'succeeded' : 'up-to-date');
        assert.equal(r.toVersion, 1);
      } finally {
        await ok.close();
      }
    }
  });

  it('channel_binding values that cannot work are usage errors before any connection', () => {
    expectSyncError(() => createPool(tls.url({ sslmode: 'disable', channel_binding: 'require' })), { kind: 'usage', setting: 'channel_binding', message: /channel binding needs TLS/, hint: /sslmode=verify-full/ });
    expectSyncError(() => createPool(tls.url({ channel_binding: 'yes' })), { kind: 'usage', setting: 'channel_binding', message: /Unknown channel_binding "yes"/, hint: /disable, prefer, require/ });
  });

  it('a CA file that did not sign the certificate: the error names the host and the CA file, with a hint on sslrootcert', async () => {
    const o = await open(mappingFor('tls_wrong_ca'), tls.url({ sslmode: 'verify-full', sslrootcert: tls.otherCaFile }));
    try {
      const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), {
        kind: 'connection',
        setting: 'sslrootcert',
        message: new RegExp(`TLS certificate of localhost:${tls.port} is not signed by a CA .*${tls.otherCaFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*No connection was made`),
        hint: /sslrootcert at the PEM file of the CA that signed localhost's certificate/,
      });
      assert.equal(err.table, undefined, 'not blamed on a table');
      assert.notEqual(err.retry, 'auto', 'retrying does not change the certificate');
      await expectSyncError(o.runner.preview(), { kind: 'connection', setting: 'sslrootcert', message: /not signed by a CA/ });
    } finally {
      await o.close();
    }
  });

  it('verify-full without sslrootcert: the hint says to set sslrootcert; following it, the run succeeds', async () => {
    const o = await open(mappingFor('tls_no_rootcert'), tls.url({ sslmode: 'verify-full' }));
    let hint: string;
    try {
      const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), {
        kind: 'connection',
        setting: 'sslrootcert',
        message: new RegExp(`TLS certificate of localhost:${tls.port} is not signed by a CA .*built-in list of public CAs \\(no sslrootcert`),
        hint: /sslrootcert=<path to its PEM file> in the connection string/,
      });
      hint = err.hint ?? '';
    } finally {
      await o.close();
    }
    // Do what the hint says: the parameter it names, with the CA's PEM file.
    const param = /(sslrootcert)=<path to its PEM file>/.exec(hint)?.[1];
    assert.equal(param, 'sslrootcert');
    const fixed = new URL(tls.url({ sslmode: 'verify-full' }));
    fixed.searchParams.set(param, tls.caFile);
    const again = await open(mappingFor('tls_no_rootcert'), fixed.toString());
    try {
      const r = await again.runner.run({ retryForMs: 0 });
      assert.equal(r.status, 'succeeded');
      assert.equal(r.rowsRead, 25);
    } finally {
      await again.close();
    }
  });

  it('a host the certificate does not name: the error names that host and the names the certificate holds; connecting by one of those works', async () => {
    // 127.0.0.2 reaches the same server; its certificate is for localhost and 127.0.0.1.
    const o = await open(mappingFor('tls_host_mismatch'), tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }, { host: '127.0.0.2' }));
    let hint: string;
    try {
      const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), {
        kind: 'connection',
        setting: 'sslmode',
        message: new RegExp(`TLS certificate of 127\\.0\\.0\\.2:${tls.port} is for DNS:localhost, IP Address:127\\.0\\.0\\.1, not for 127\\.0\\.0\\.2.*No connection was made`),
        hint: /host name the certificate names .*sslmode=verify-ca/,
      });
      assert.notEqual(err.retry, 'auto');
      hint = err.hint ?? '';
    } finally {
      await o.close();
    }
    const named = /DNS:([^,)\s]+)/.exec(hint)?.[1];
    assert.equal(named, 'localhost');
    const again = await open(mappingFor('tls_host_mismatch'), tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }, { host: named }));
    try {
      assert.equal((await again.runner.run({ retryForMs: 0 })).status, 'succeeded');
    } finally {
      await again.close();
    }
  });

  it('sslmode=disable against a server that accepts only TLS: the login refusal names sslmode, and the hint works', async () => {
    const o = await open(mappingFor('tls_disabled'), tls.url({ sslmode: 'disable' }));
    try {
      await expectSyncError(o.runner.run({ retryForMs: 0 }), {
        kind: 'auth',
        setting: 'sslmode',
        message: /refused the login: .*no encryption.*accepts only TLS connections/,
        hint: /sslmode=verify-full \(or sslmode=require\)/,
      });
    } finally {
      await o.close();
    }
    const again = await open(mappingFor('tls_disabled'), tls.url({ sslmode: 'require' }));
    try {
      assert.equal((await again.runner.run({ toVersion: 1, retryForMs: 0 })).status, 'succeeded');
    } finally {
      await again.close();
    }
  });

  describe('a server without TLS', () => {
    const plain = useTestDatabase('tls_plain');

    it('sslmode=require (or channel_binding=require alone) against it: a clear error naming the host and the setting, not retried', async () => {
      const cases = [
        { params: { sslmode: 'require' }, message: /does not accept TLS, but the connection asks for TLS \(sslmode=require\).*No connection was made/, setting: 'sslmode' },
        { params: { channel_binding: 'require' }, message: /does not accept TLS, but the connection asks for TLS \(channel_binding=require\).*No connection was made/, setting: 'channel_binding' },
      ];
      for (const c of cases) {
        const u = new URL(plain().url);
        for (const [k, v] of Object.entries(c.params)) u.searchParams.set(k, v);
        const o = await open(mappingFor('tls_plain_server'), u.toString());
        try {
          const err = await expectSyncError(o.runner.run({ retryForMs: 0 }), { kind: 'connection', setting: c.setting, message: c.message, hint: /Enable TLS on the server/ });
          assert.match(err.message, new RegExp(`at ${u.hostname.replace(/\./g, '\\.')}:${u.port}`));
          assert.notEqual(err.retry, 'auto');
        } finally {
          await o.close();
        }
      }
    });
  });

  describe('a compute that is starting (TCP proxy in front of the TLS server)', () => {
    let proxy: TcpProxy | undefined;
    afterEach(async () => {
      await proxy?.close();
      proxy = undefined;
    });

    const retryWarnings = (events: SyncEvent[]): string[] =>
      events.filter((e): e is Extract<SyncEvent, { type: 'warning' }> => e.type === 'warning').map((e) => e.message);

    function checkProgress(warnings: string[], port: number, reason: RegExp): void {
      const waiting = warnings.filter((m) => m.startsWith(`Waiting for the database at localhost:${port} to accept connections`));
      assert.ok(waiting.length >= 2, `a message per attempt while it starts: ${JSON.stringify(warnings)}`);
      for (const m of waiting) {
        assert.match(m, reason);
        assert.match(m, /— retrying in \d+ ms \(attempt \d+, retrying for up to \d+ s more\)$/);
      }
      const attempts = waiting.map((m) => Number(/\(attempt (\d+),/.exec(m)?.[1]));
      assert.deepEqual(attempts, attempts.map((_, i) => i + 2), 'one message per attempt, numbered from the second');
      const delays = waiting.map((m) => Number(/retrying in (\d+) ms/.exec(m)?.[1]));
      assert.ok(delays[1]! > delays[0]!, `backoff grows: ${delays.join(', ')}`);
    }

    it('connections closed as soon as they open, while it starts: retried with backoff and a message per attempt, then the run succeeds', async () => {
      proxy = await startTcpProxy({ host: '127.0.0.1', port: tls.port });
      const p = proxy;
      p.refuseNew(true);
      const url = tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile, channel_binding: 'require' }, {});
      const u = new URL(url);
      u.port = String(p.port);
      const o = await open(mappingFor('cold_reset'), u.toString());
      try {
        // The compute is up once three connections were turned away.
        const started = new Promise<void>((resolve) => {
          const t = setInterval(() => {
            if (p.refused >= 3) {
              clearInterval(t);
              p.refuseNew(false);
              resolve();
            }
          }, 20);
        });
        const r = await o.runner.run({ retryForMs: 60_000, backoffMs: 100, onEvent: (e) => o.events.push(e) });
        await started;
        assert.equal(r.status, 'succeeded');
        assert.equal(r.rowsRead, 25);
        checkProgress(retryWarnings(o.events), p.port, /\(the connection was closed while opening .*a suspended Neon compute takes a few seconds to start\)/);
      } finally {
        await o.close();
      }
    });

    it('connections refused (nothing listens yet) while it starts: retried, then the run succeeds', async () => {
      const port = await freePort();
      const url = new URL(tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }));
      url.port = String(port);
      const o = await open(mappingFor('cold_refused'), url.toString());
      try {
        // The compute starts listening after the second attempt was refused.
        const onEvent = (e: SyncEvent): void => {
          o.events.push(e);
          if (e.type === 'warning' && / \(attempt 3,/.test(e.message) && proxy === undefined) {
            void startTcpProxy({ host: '127.0.0.1', port: tls.port }, { port }).then((p) => (proxy = p));
          }
        };
        const r = await o.runner.run({ retryForMs: 60_000, backoffMs: 200, onEvent });
        assert.equal(r.status, 'succeeded');
        checkProgress(retryWarnings(o.events), port, /\(connection refused; a suspended Neon compute/);
      } finally {
        await o.close();
      }
    });

    it('preview on a compute that is starting waits for it (a logger warning per attempt, as the CLI prints them), then shows the changes', async () => {
      proxy = await startTcpProxy({ host: '127.0.0.1', port: tls.port });
      const p = proxy;
      const u = new URL(tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }));
      u.port = String(p.port);
      const warnings: string[] = [];
      const o = await open(mappingFor('cold_preview'), u.toString(), { ...quiet, warn: (m) => void warnings.push(m) });
      try {
        p.refuseNew(true);
        const t = setInterval(() => {
          if (p.refused >= 3) p.refuseNew(false);
        }, 20);
        try {
          const report = await o.runner.preview({ backoffMs: 100 });
          assert.equal(report.mode, 'initial');
          assert.equal(report.totals.insert, 25);
        } finally {
          clearInterval(t);
        }
        checkProgress(warnings, p.port, /\(the connection was closed while opening /);
        // An error that waiting does not cure still fails at once.
        const bad = await open(mappingFor('cold_preview'), tls.url({ sslmode: 'verify-full', sslrootcert: tls.otherCaFile }), { ...quiet, warn: (m) => void warnings.push(m) });
        try {
          const before = warnings.length;
          await expectSyncError(bad.runner.preview(), { kind: 'connection', setting: 'sslrootcert' });
          assert.equal(warnings.length, before, 'no waiting on a certificate error');
        } finally {
          await bad.close();
        }
      } finally {
        await o.close();
      }
    });

    it('a compute that does not come up within the retry budget: a clear error naming the host, the attempts and --retry-for', async () => {
      proxy = await startTcpProxy({ host: '127.0.0.1', port: tls.port });
      proxy.refuseNew(true);
      const u = new URL(tls.url({ sslmode: 'verify-full', sslrootcert: tls.caFile }));
      u.port = String(proxy.port);
      const o = await open(mappingFor('cold_never'), u.toString());
      try {
        const err = await expectSyncError(o.runner.run({ retryForMs: 1_500, backoffMs: 100, onEvent: (e) => o.events.push(e) }), {
          kind: 'connection',
          message: new RegExp(`Could not connect to Postgres at localhost:${proxy.port}: the connection was closed while it was being opened.*No connection was made.*gave up after \\d+ attempts`),
          hint: /--retry-for SECONDS/,
        });
        assert.equal(err.table, undefined);
        assert.ok(proxy.refused >= 2, `several attempts were made: ${proxy.refused}`);
        assert.ok(retryWarnings(o.events).length >= 1);
      } finally {
        await o.close();
      }
    });
  });
});
