import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/**
 * The latency proxy (tcpProxy.ts) in a child process of its own, for benchmarks: in the
 * process under test its timers and socket work would run on the engine's main thread and
 * wait behind it (and slow it down), which a real network does not. Latency is one way, per
 * chunk, as in tcpProxy; `handshakeMs` adds the TCP handshake's round trip to each new
 * connection (see TcpProxy.setHandshake).
 */
export interface ProxyProcess {
  readonly port: number;
  readonly pid: number;
  close(): Promise<void>;
}

export async function startTcpProxyProcess(target: { host: string; port: number }, opts: { latencyMs: number; handshakeMs?: number }): Promise<ProxyProcess> {
  const child: ChildProcess = fork(path.join(__dirname, 'tcpProxyChild.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`the proxy process exited (code ${code}) before it listened`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', (m: unknown) => {
      child.off('exit', onExit);
      const p = (m as { port?: unknown }).port;
      if (typeof p === 'number') resolve(p);
      else reject(new Error(`unexpected message from the proxy process: ${JSON.stringify(m)}`));
    });
    child.send({ target, latencyMs: opts.latencyMs, handshakeMs: opts.handshakeMs ?? 0 });
  });
  return {
    port,
    pid: child.pid as number,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.send({ close: true });
    }),
  };
}
