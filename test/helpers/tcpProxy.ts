import * as net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server, for fault tests: it forwards bytes both
 * ways, and can add latency, reset (RST) or half-close its connections, stall them (stop
 * forwarding, keep the sockets open: neither end sees anything) or blackhole new ones
 * (accept, never forward, never answer).
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /**
   * Delay every chunk by this many ms (0: none), each way: a one-way latency. Each chunk
   * gets its own timer, so chunks in flight overlap (a stream of COPY data arrives
   * `ms` later at the rate it was sent, as over a real link), they are not queued one
   * latency after another.
   */
  setLatency(ms: number): void;
  /**
   * A new connection's first client bytes wait this many ms more (0: none): the TCP
   * handshake's round trip, which a connection to a remote server pays before it can send
   * anything (the proxy's own accept on 127.0.0.1 costs nothing). Set it to the RTT.
   */
  setHandshake(ms: number): void;
  /** Resets (RST) every open connection on both sides. */
  resetAll(): void;
  /** Ends the client side of every open connection (FIN), keeping the server side open. */
  halfCloseAll(): void;
  /**
   * Stops forwarding on every open connection, both ways, without closing anything: the
   * server and the client each see a silent peer (a half-open connection).
   */
  stallAll(): void;
  /** New connections are accepted and then ignored (no bytes either way), until turned off. */
  blackhole(on: boolean): void;
  /**
   * New connections are accepted and reset at once (the client sees its connection closed
   * while opening it), until turned off: a proxy in front of a compute that is starting.
   */
  refuseNew(on: boolean): void;
  /** Connections reset by refuseNew so far. */
  readonly refused: number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  stalled: boolean;
}

/** `listen.port`: listen there (a port chosen earlier, nothing listening on it until now); default: any free port. */
export async function startTcpProxy(target: { host: string; port: number }, listen: { port?: number } = {}): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  /** Every socket ever opened, stalled ones included, for close(). */
  const sockets = new Set<net.Socket>();
  const holes = new Set<net.Socket>();
  let latency = 0;
  let blackholed = false;
  let refusing = false;
  let refused = 0;
  let handshake = 0;
  /**
   * Forwards `from`'s bytes to `to`, each chunk `latency` ms after it arrived (chunks in
   * flight overlap, as on a real link; a FIFO with one timer keeps their order, which
   * timers of different lengths would not). `notBefore`: nothing is sent before then (the
   * TCP handshake a real link pays before the client's first byte can leave).
   */
  const forward = (pair: Pair, from: net.Socket, to: net.Socket, notBefore = 0): void => {
    const queue: Array<{ chunk: Buffer; due: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && (queue[0] as { due: number }).due <= now + 0.5) {
        const { chunk } = queue.shift() as { chunk: Buffer };
        if (!pair.stalled && !to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, Math.max(0, (queue[0] as { due: number }).due - performance.now()));
    };
    from.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      const now = performance.now();
      const due = Math.max(now, notBefore) + latency;
      if (due <= now && queue.length === 0) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      queue.push({ chunk, due });
      if (!timer) timer = setTimeout(drain, Math.max(0, due - now));
    });
    from.on('end', () => {
      if (pair.stalled) return;
      // After the bytes still in flight.
      const finish = (): void => {
        if (queue.length > 0) setTimeout(finish, 1);
        else to.end();
      };
      finish();
    });
  };
  const srv = net.createServer((client) => {
    client.on('error', () => undefined);
    sockets.add(client);
    if (blackholed) {
      holes.add(client);
      client.on('close', () => holes.delete(client));
      return;
    }
    if (refusing) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(target.port, target.host);
    server.on('error', () => undefined);
    // No Nagle on either leg: the client and the server both write with TCP_NODELAY, and a
    // proxy that coalesced small writes (waiting for the peer's delayed ACK) would add
    // delays a real network path does not have.
    client.setNoDelay(true);
    server.setNoDelay(true);
    sockets.add(server);
    const pair: Pair = { client, server, stalled: false };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      if (!pair.stalled) {
        client.destroy();
        server.destroy();
      }
    };
    client.on('close', drop);
    server.on('close', drop);
    // A real client's connect() resolves one round trip (SYN, SYN-ACK) after it starts; here
    // it resolves at once, so its first bytes wait that round trip before they leave.
    forward(pair, client, server, handshake > 0 ? performance.now() + handshake : 0);
    forward(pair, server, client);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(listen.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    get connections() {
      return pairs.size;
    },
    setLatency: (ms) => void (latency = ms),
    setHandshake: (ms) => void (handshake = ms),
    resetAll: () => {
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.server.resetAndDestroy();
      }
    },
    halfCloseAll: () => {
      for (const p of pairs) p.client.end();
    },
    stallAll: () => {
      for (const p of pairs) p.stalled = true;
    },
    blackhole: (on) => void (blackholed = on),
    refuseNew: (on) => void (refusing = on),
    get refused() {
      return refused;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const h of holes) h.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}
