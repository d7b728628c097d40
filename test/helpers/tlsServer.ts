import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { startThrowawayServer } from './postgres';
import type { TestServer } from './postgres';

/**
 * A throwaway PostgreSQL that meets clients as Neon does: TLS only (`ssl=on`, a server
 * certificate for localhost and 127.0.0.1 signed by a CA made here with openssl), SCRAM-SHA-256
 * passwords (pg_hba `hostssl ... scram-sha-256`, password_encryption=scram-sha-256), so
 * SCRAM-SHA-256-PLUS (channel binding) is offered. Plain TCP connections are refused by
 * pg_hba. It listens on 127.0.0.1 and 127.0.0.2; the certificate names only the first, so
 * 127.0.0.2 is the same server under a name the certificate does not hold.
 * Separate from the process-wide test server (which stays plain and trust, so tests that do
 * not need TLS pay nothing for it); start it only in the tests that need it.
 */
export interface TlsServer {
  server: TestServer;
  port: number;
  /** PEM of the CA that signed the server certificate. */
  caFile: string;
  /** PEM of another CA, which did not sign it. */
  otherCaFile: string;
  /** The SCRAM role (password `ROLE_PASSWORD`) and its database. */
  role: string;
  password: string;
  database: string;
  /** A role whose pg_hba line asks for a plain-text password (over TLS), for channel_binding refusals. */
  plainRole: string;
  /** A role let in without any password exchange (pg_hba trust, over TLS), likewise. */
  trustRole: string;
  /** postgresql://role:password@host:port/database?params (host default localhost). */
  url(params?: Record<string, string>, at?: { host?: string; user?: string; password?: string }): string;
  /** Superuser URL through the Unix socket. */
  adminUrl: string;
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A CA (ca.crt/ca.key) in `dir`, named `name`. */
function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-subj', `/CN=delta-neon-sync test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

/** server.crt/server.key for localhost and 127.0.0.1, signed by `ca`. */
function makeServerCert(dir: string, ca: string): void {
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-sha256', '-days', '2', '-in', 'server.csr', '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', 'server.crt', '-extfile', 'server.ext'], dir);
}

export async function startTlsServer(): Promise<TlsServer> {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-tls-'));
  const removeCerts = (): void => fs.rmSync(certDir, { recursive: true, force: true });
  process.once('exit', removeCerts);
  makeCa(certDir, 'ca');
  makeCa(certDir, 'other-ca');
  makeServerCert(certDir, 'ca');
  const role = 'neon_app';
  const plainRole = 'plain_app';
  const trustRole = 'trust_app';
  const password = 'Npg-s3cret/with:odd@chars';
  const database = 'neondb';
  const server = await startThrowawayServer({
    adminOverSocket: true,
    settings: ['ssl=on', 'ssl_cert_file=server.crt', 'ssl_key_file=server.key', 'password_encryption=scram-sha-256', 'listen_addresses=127.0.0.1,127.0.0.2'],
    configure: (dataDir) => {
      for (const f of ['server.crt', 'server.key']) fs.copyFileSync(path.join(certDir, f), path.join(dataDir, f));
      fs.chmodSync(path.join(dataDir, 'server.key'), 0o600);
      fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), [
        'local all all trust',
        `hostssl all ${plainRole} 127.0.0.0/8 password`,
        `hostssl all ${trustRole} 127.0.0.0/8 trust`,
        'hostssl all all 127.0.0.0/8 scram-sha-256',
        '',
      ].join('\n'));
    },
  });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    const lit = password.replace(/'/g, "''");
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${lit}'`);
    await admin.query(`CREATE ROLE ${plainRole} LOGIN PASSWORD '${lit}'`);
    await admin.query(`CREATE ROLE ${trustRole} LOGIN PASSWORD '${lit}'`);
    await admin.query(`CREATE DATABASE ${database} OWNER ${role}`);
    // The same rights as the SCRAM role (the pipeline's state schema is owned by it).
    // and what they create is owned by it, whichever logs in first.
    await admin.query(`GRANT ${role} TO ${plainRole}, ${trustRole}`);
    for (const r of [plainRole, trustRole]) await admin.query(`ALTER ROLE ${r} SET role = ${role}`);
  } finally {
    await admin.end();
  }
  const port = server.port as number;
  return {
    server,
    port,
    caFile: path.join(certDir, 'ca.crt'),
    otherCaFile: path.join(certDir, 'other-ca.crt'),
    role,
    plainRole,
    trustRole,
    password,
    database,
    adminUrl: server.adminUrl,
    url(params = {}, at = {}) {
      const u = new URL(`postgresql://localhost:${port}/${database}`);
      u.hostname = at.host ?? 'localhost';
      u.username = encodeURIComponent(at.user ?? role);
      u.password = encodeURIComponent(at.password ?? password);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    },
    async stop() {
      await server.stop();
      removeCerts();
      process.removeListener('exit', removeCerts);
    },
  };
}
