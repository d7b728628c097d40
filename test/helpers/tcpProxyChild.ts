/** Entry of the proxy child process (tcpProxyProcess.ts): a TcpProxy driven over IPC. */
import { startTcpProxy } from './tcpProxy';
import type { TcpProxy } from './tcpProxy';

let proxy: TcpProxy | undefined;

process.on('message', (m: { target?: { host: string; port: number }; latencyMs?: number; handshakeMs?: number; close?: boolean }) => {
  if (m.close) {
    void (proxy?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    return;
  }
  if (!m.target) return;
  void startTcpProxy(m.target).then((p) => {
    proxy = p;
    p.setLatency(m.latencyMs ?? 0);
    p.setHandshake(m.handshakeMs ?? 0);
    process.send?.({ port: p.port });
  });
});
// The parent gone: nothing to proxy for.
process.on('disconnect', () => process.exit(0));
