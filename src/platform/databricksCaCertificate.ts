import { readFile } from 'node:fs/promises';
import { SyncError } from '../sync/errors';

/** The setting that names the file, for the error's `setting`. */
const SETTING = 'deltaSync.databricks.caCertificateFile';

/**
 * Extra trusted CAs for Databricks clients (a TLS-inspecting proxy), from the PEM file the
 * setting names. Like NODE_EXTRA_CA_CERTS, but per client: nothing changes Node's global
 * trust store. The file is read for each new client, so a changed setting applies at the
 * next connection. A file that cannot be read is a 'usage' error naming the setting.
 */
export function databricksCaCertificate(caFile: () => string | undefined, read: (file: string) => Promise<Buffer> = readFile): () => Promise<{ customCaCert?: Buffer }> {
  return async () => {
    const file = caFile();
    if (!file) return {};
    const pem = await read(file).catch((e: unknown) => {
      // Classified where it enters: Node's own reason (ENOENT, EACCES) goes into the message.
      throw new SyncError('usage', `Cannot read the CA certificate file ${file}: ${e instanceof Error ? e.message : String(e)}`, { setting: SETTING, cause: e });
    });
    return { customCaCert: pem };
  };
}
