import * as net from 'node:net';

/**
 * The Postgres front door of the fake Lakebase workspace: a small proxy speaking the
 * Postgres wire protocol, as the real Lakebase (Neon) proxy in front of the compute does.
 * It asks the client for its password in clear text (over loopback), checks it with
 * `check` (a database credential the workspace issued for that role and that has not
 * expired), and only then logs in to the real PostgreSQL as that role with the role's own
 * backend secret (SCRAM-SHA-256, which the client never sees) and hands the connection over
 * (from AuthenticationOk on, bytes are forwarded both ways untouched).
 *
 * So, as on Lakebase, every token stays valid for new logins until it expires, however
 * many were issued after it; an expired or unknown token is refused with the server's own
 * words (28P01 "password authentication failed for user ..."); connections already open
 * carry on past their token's expiry.
 */

export interface LakebaseGatewayOptions {
  backend: { host: string; port: number };
  /** Whether `password` is a live credential of `role` (checked at each login). */
  check: (role: string, password: string) => boolean;
  /** The role's password on the real server (undefined: not a Lakebase role, refused). */
  backendSecret: (role: string) => string | undefined;
}

export interface LakebaseGateway {
  readonly port: number;
  /** Logins refused so far (unknown or expired token). */
  readonly refused: number;
  close(): Promise<void>;
}

// pg's SCRAM client (the same code the driver uses to log in); plain JS without types.
const sasl = require('pg/lib/crypto/sasl') as {
  startSession(mechanisms: string[], stream?: unknown): { mechanism: string; response: string; message: string; clientNonce: string };
  continueSession(session: object, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: object, serverData: string): void;
};

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** Reads length-prefixed messages from a socket: `startup` ones (no type byte) or typed ones. */
class MessageReader {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = Buffer.concat([this.buf, chunk]);
    this.waiting?.();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.waiting?.();
  };

  private async need(n: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error('connection closed during login');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
  }

  /** A startup-phase message: int32 length (itself included), then the body. */
  async startup(): Promise<Buffer> {
    await this.need(4);
    const len = this.buf.readInt32BE(0);
    await this.need(len);
    const msg = this.buf.subarray(0, len);
    this.buf = this.buf.subarray(len);
    return Buffer.from(msg);
  }

  /** A typed message: its type, its body, and its raw bytes. */
  async message(): Promise<{ type: string; body: Buffer; raw: Buffer }> {
    await this.need(5);
    const len = this.buf.readInt32BE(1);
    await this.need(1 + len);
    const raw = Buffer.from(this.buf.subarray(0, 1 + len));
    this.buf = this.buf.subarray(1 + len);
    return { type: String.fromCharCode(raw[0] as number), body: raw.subarray(5), raw };
  }

  /** Stops reading; returns what was read but not consumed (to forward as is). */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** An ErrorResponse as the server sends it for a failed password login. */
function fatal(code: string, message: string): Buffer {
  return typed('E', Buffer.concat([cstr('SFATAL'), cstr('VFATAL'), cstr(`C${code}`), cstr(`M${message}`), Buffer.from([0])]));
}

function startupParams(msg: Buffer): Map<string, string> {
  const parts = msg.subarray(8).toString('utf8').split('\0');
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) out.set(parts[i] as string, parts[i + 1] as string);
  return out;
}

/** Logs in to the real server as `user` with `secret` (SCRAM-SHA-256); resolves with the bytes from AuthenticationOk on. */
async function backendLogin(server: net.Socket, reader: MessageReader, startup: Buffer, secret: string): Promise<void> {
  server.write(startup);
  let session: ReturnType<typeof sasl.startSession> | undefined;
  for (;;) {
    const m = await reader.message();
    if (m.type === 'E') throw new Error(`backend refused the login: ${m.body.toString('utf8').replace(/\0/g, ' ')}`);
    if (m.type !== 'R') throw new Error(`unexpected backend message ${m.type} during login`);
    const code = m.body.readInt32BE(0);
    if (code === 0) return;
    if (code === 10) {
      const mechanisms = m.body.subarray(4).toString('utf8').split('\0').filter(Boolean);
      session = sasl.startSession(mechanisms.filter((x) => x === 'SCRAM-SHA-256'));
      const response = Buffer.from(session.response, 'utf8');
      server.write(typed('p', Buffer.concat([cstr(session.mechanism), int32(response.length), response])));
    } else if (code === 11 && session) {
      await sasl.continueSession(session, secret, m.body.subarray(4).toString('utf8'));
      server.write(typed('p', Buffer.from(session.response, 'utf8')));
    } else if (code === 12 && session) {
      sasl.finalizeSession(session, m.body.subarray(4).toString('utf8'));
    } else if (code === 3) {
      server.write(typed('p', cstr(secret)));
    } else {
      throw new Error(`unsupported backend authentication request ${code}`);
    }
  }
}

export async function startLakebaseGateway(opts: LakebaseGatewayOptions): Promise<LakebaseGateway> {
  const sockets = new Set<net.Socket>();
  let refused = 0;
  const track = (s: net.Socket): net.Socket => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    return s;
  };

  const serve = async (client: net.Socket): Promise<void> => {
    const reader = new MessageReader(client);
    let startup = await reader.startup();
    while (startup.length === 8 && (startup.readInt32BE(4) === SSL_REQUEST || startup.readInt32BE(4) === GSSENC_REQUEST)) {
      client.write('N'); // no TLS on the loopback gateway: the client goes on in clear (sslmode=disable/prefer)
      startup = await reader.startup();
    }
    if (startup.length === 16 && startup.readInt32BE(4) === CANCEL_REQUEST) {
      const server = track(net.connect(opts.backend.port, opts.backend.host));
      server.end(startup);
      client.end();
      return;
    }
    const user = startupParams(startup).get('user') ?? '';
    client.write(typed('R', int32(3))); // AuthenticationCleartextPassword
    const pw = await reader.message();
    const password = pw.type === 'p' ? pw.body.toString('utf8').replace(/\0$/, '') : '';
    const secret = opts.backendSecret(user);
    if (!secret || !opts.check(user, password)) {
      refused++;
      client.end(fatal('28P01', `password authentication failed for user "${user}"`));
      return;
    }
    const server = track(net.connect(opts.backend.port, opts.backend.host));
    const serverReader = new MessageReader(server);
    try {
      await backendLogin(server, serverReader, startup, secret);
    } catch (e) {
      server.destroy();
      client.end(fatal('08006', `Lakebase gateway: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    // AuthenticationOk to the client, then whatever the server sent after it and everything else as is.
    client.write(typed('R', int32(0)));
    const fromServer = serverReader.detach();
    const fromClient = reader.detach();
    if (fromServer.length) client.write(fromServer);
    if (fromClient.length) server.write(fromClient);
    client.pipe(server);
    server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  };

  const srv = net.createServer((client) => {
    track(client);
    serve(client).catch(() => client.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    get refused() {
      return refused;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}
