/**
 * COPY text encoding speed in JS alone: `npx tsx bench/encodeBench.ts [rows]`. The same
 * customer rows as pgBench; prints CPU ns per row (best of 7 passes).
 */
import { CUSTOMER_PROFILE_COLUMNS } from '../src/fixtures/customerProfiles';
import type { Row } from '../src/sync/delta/types';
import { CopyRowEncoder } from '../src/sync/postgres/copyEncoder';
import { defaultTargetColumns } from '../src/sync/postgres/renderCreateTable';
import { fieldsOf } from '../test/builders/deltaFields';

const N = Number(process.argv[2] ?? 200_000);
const fields = fieldsOf(CUSTOMER_PROFILE_COLUMNS);
const columns = defaultTargetColumns(fields);
const rows: Row[] = [];
for (let i = 0; i < N; i++) {
  const k = (i * 7919 + 13) % N;
  rows.push({
    customer_id: `C${String(k).padStart(8, '0')}`,
    full_name: `Ada Lovelace ${k}`,
    email: `ada.lovelace.${k}@example.com`,
    segment: 'smb',
    last_purchase_date: 1_600_000_000_000_000n + BigInt(k) * 1_000_003n,
    total_spend: `${(k * 37) % 100_000}.${String(k % 100).padStart(2, '0')}`,
    propensity_score: ((k * 2654435761) % 1_000_000) / 1_000_000,
    is_active: k % 3 !== 0,
  });
}
function measure(label: string, encode: (r: Row) => string, toBuffer: 'rope' | 'write'): void {
  let best = Infinity;
  for (let pass = 0; pass < 7; pass++) {
    const c0 = process.cpuUsage();
    let bytes = 0;
    if (toBuffer === 'rope') {
      let buf = '';
      for (const r of rows) {
        buf += encode(r);
        if (buf.length >= 256 * 1024) {
          bytes += Buffer.from(buf, 'utf8').length;
          buf = '';
        }
      }
      bytes += Buffer.from(buf, 'utf8').length;
    } else {
      let chunk = Buffer.allocUnsafe(256 * 1024);
      let pos = 0;
      for (const r of rows) {
        const line = encode(r);
        if (pos + line.length * 3 > chunk.length) {
          bytes += pos;
          chunk = Buffer.allocUnsafe(256 * 1024);
          pos = 0;
        }
        pos += chunk.write(line, pos, 'utf8');
      }
      bytes += pos;
    }
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
    void bytes;
  }
  console.log(`${label.padEnd(28)} ${Math.round((best * 1e6) / N)} ns/row CPU (best of 7)`);
}
const enc = new CopyRowEncoder(columns);
for (let k = 0; k < 2; k++) {
  // copyRows used to build one string per chunk ('rope'); it now writes each line into a Buffer.
  measure('lines joined, Buffer.from', (r) => enc.encode(r), 'rope');
  measure('lines Buffer.write', (r) => enc.encode(r), 'write');
}
