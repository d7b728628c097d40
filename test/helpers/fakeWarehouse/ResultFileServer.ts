import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

/**
 * The cloud storage of a local test warehouse: CloudFetch result files served over HTTPS
 * by presigned links, as a real SQL warehouse serves large results (S3 / ADLS / GCS URLs
 * signed for a short time). A link is `https://127.0.0.1:<port>/results/<file>?X-Expires=<ms>&X-Signature=<hmac>`;
 * no bearer token is needed (the signature is the credential), and a link past its expiry
 * or with a wrong signature is refused with HTTP 403, as cloud storage refuses an expired
 * presigned URL. The server certificate is the warehouse's (one certificate for 127.0.0.1),
 * so a client that trusts the warehouse through the driver's `customCaCert` also trusts
 * its result files: the driver downloads links with the same HTTPS agent.
 */

/** The LZ4 frame codec of the driver's own dependency (`lz4-napi`), resolved from the driver. */
interface Lz4Frame {
  compressFrameSync(data: Buffer): Buffer;
  decompressFrameSync(data: Buffer): Buffer;
}

let lz4: Lz4Frame | undefined;

/** LZ4 frame encoder (magic 0x184D2204): lz4-napi, the library @databricks/sql decodes with. */
export function lz4Frame(): Lz4Frame {
  if (!lz4) {
    const fromDriver = createRequire(require.resolve('@databricks/sql'));
    lz4 = fromDriver('lz4-napi') as Lz4Frame;
  }
  return lz4;
}

export interface StoredFile {
  bytes: Buffer;
  /** Bytes before compression (the link's bytesNum is the stored size). */
  rawBytes: number;
}

export class ResultFileServer {
  private readonly files = new Map<string, StoredFile>();
  private readonly secret = randomBytes(32);
  private port = 0;
  /** Files served (HTTP 200), in order: tests read which were downloaded. */
  readonly served: string[] = [];
  /** Requests refused as expired. */
  expiredRefusals = 0;
  /**
   * Called before a file is sent; a test may delay it (a slow download, so that links
   * waiting behind it expire).
   */
  beforeServe?: (id: string, n: number) => Promise<void>;

  private constructor(private readonly server: Server) {}

  static async start(tls: { key: string; cert: string }): Promise<ResultFileServer> {
    let self: ResultFileServer | undefined;
    const server = createServer(tls, (req, res) => {
      void self?.handle(req, res);
    });
    self = new ResultFileServer(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self.port = (server.address() as AddressInfo).port;
    return self;
  }

  put(id: string, file: StoredFile): void {
    this.files.set(id, file);
  }

  delete(id: string): void {
    this.files.delete(id);
  }

  get storedBytes(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.bytes.length;
    return n;
  }

  /** A presigned link to file `id`, valid until `expiresAt` (ms since the epoch). */
  link(id: string, expiresAt: number): string {
    return `https://127.0.0.1:${this.port}/results/${id}?X-Expires=${expiresAt}&X-Signature=${this.sign(id, expiresAt)}`;
  }

  private sign(id: string, expiresAt: number): string {
    return createHmac('sha256', this.secret).update(`${id}\n${expiresAt}`).digest('hex');
  }

  private refuse(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const m = /^\/results\/([0-9a-f-]+)$/.exec(url.pathname);
    const expires = Number(url.searchParams.get('X-Expires'));
    const sig = Buffer.from(url.searchParams.get('X-Signature') ?? '', 'hex');
    if (req.method !== 'GET' || !m) return this.refuse(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    const id = m[1] as string;
    const want = Buffer.from(this.sign(id, expires), 'hex');
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) return this.refuse(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    if (!Number.isFinite(expires) || Date.now() >= expires) {
      this.expiredRefusals++;
      return this.refuse(res, 403, 'AccessDenied', 'Request has expired');
    }
    const file = this.files.get(id);
    if (!file) return this.refuse(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    await this.beforeServe?.(id, this.served.length);
    this.served.push(id);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes.length }).end(file.bytes);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
