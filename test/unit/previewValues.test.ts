import assert from 'node:assert/strict';
import type { DeltaType } from '../../src/sync/delta/types';
import type { TargetColumn } from '../../src/sync/ports/targetTypes';
import { floatText, formatValue, jsonbText } from '../../src/sync/postgres/formatValue';
import { PreviewChecker } from '../../src/sync/postgres/previewChecks';
import { SyncError } from '../../src/sync/errors';
import { toProtocolError } from '../../src/views/toProtocolError';
import { array, field, long, string, struct, timestamp, date, integer } from '../builders/deltaFields';

const col = (name: string, type: DeltaType, pgType: string): TargetColumn => ({ name, pgType, source: field(name, type) });

describe('preview value formatter', () => {
  it('prints timestamps with the fraction trimmed as Postgres does, and BC dates', () => {
    assert.equal(formatValue(1664307886500000n, col('t', timestamp(), 'timestamptz')), '2022-09-27 19:44:46.5+00');
    assert.equal(formatValue(0n, col('t', timestamp(), 'timestamptz')), '1970-01-01 00:00:00+00');
    assert.equal(formatValue(-719529, col('d', date(), 'date')), '0002-12-31 BC');
  });

  it('shows a value the target cannot hold as invalid instead of throwing', () => {
    assert.match(formatValue('a\u0000b', col('s', string(), 'text')) ?? '', /^<invalid: .*NUL/);
    assert.match(formatValue(10n ** 19n, col('t', timestamp(), 'timestamptz')) ?? '', /^<invalid: .*outside the range/);
  });

  it('prints nested values as jsonb prints them: spaces, keys shorter first, exact numbers', () => {
    const c = col('info', struct(field('zeta', string()), field('a', long()), field('tags', array(string()))), 'jsonb');
    assert.equal(formatValue({ zeta: 'z', a: 9007199254740993n, tags: ['x', 'y'] }, c), '{"a": 9007199254740993, "tags": ["x", "y"], "zeta": "z"}');
    assert.equal(jsonbText('{"b":1,"a":{"y":[],"x":{}},"b":2}'), '{"a": {"x": {}, "y": []}, "b": 2}');
  });

  it('prints floats as float8out and float4out: exponent form outside 1e-4 .. 1e15 (real: 1e6)', () => {
    assert.equal(floatText(1e20, false), '1e+20');
    assert.equal(floatText(123456789012345, false), '123456789012345');
    assert.equal(floatText(1e15, false), '1e+15');
    assert.equal(floatText(1.5e-7, false), '1.5e-07');
    assert.equal(floatText(1234567, true), '1.234567e+06');
    assert.equal(floatText(-0, false), '-0');
  });
});

describe('pre-apply checks', () => {
  it('report NUL in text, out-of-range timestamps and integers, with counts and the first rows', () => {
    const cols = [col('id', long(), 'bigint'), col('s', string(), 'text'), col('t', timestamp(), 'timestamptz'), col('n', long(), 'integer')];
    const ch = new PreviewChecker(cols, ['id'], { duplicates: false });
    ch.add([
      { id: 1n, s: 'ok', t: 0n, n: 5n },
      { id: 2n, s: 'bad\u0000', t: 10n ** 19n, n: 2147483648n },
      { id: 3n, s: 'bad\u0000too', t: 0n, n: -2147483648n },
    ]);
    const w = ch.warnings();
    assert.deepEqual(w.map((x) => [x.check, x.column, x.count]), [
      ['nul-byte', 's', 2],
      ['integer-range', 'n', 1],
      ['timestamp-range', 't', 1],
    ]);
    assert.deepEqual(w[1]?.samples, [{ id: '2', n: '2147483648' }]);
  });

  it('keeps at most five sample rows however many rows offend, and finds duplicates only when asked', () => {
    const cols = [col('id', integer(), 'integer'), col('s', string(), 'varchar(2)')];
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i % 10, s: 'xyz' }));
    const dup = new PreviewChecker(cols, ['id'], { duplicates: true });
    dup.add(rows);
    assert.deepEqual(dup.warnings().map((x) => [x.check, x.count, x.samples.length]), [['duplicate-key', 40, 5], ['too-long', 50, 5]]);
    const noDup = new PreviewChecker(cols, ['id'], { duplicates: false });
    noDup.add(rows);
    assert.deepEqual(noDup.warnings().map((x) => x.check), ['too-long']);
  });
});

describe('hints shown in VS Code', () => {
  it('name the palette command instead of the CLI command', () => {
    const e = new SyncError('mapping', 'Pipeline "p" has no checkpoint: a dry run checks incremental changes; preview the initial load instead.', { hint: 'delta-neon-sync preview --mapping <file>' });
    assert.equal(toProtocolError(e).hint, 'the "Delta Sync: Preview Changes" command on the mapping');
    const load = new SyncError('target', 'x', { hint: 'Run a new initial load: delta-neon-sync sync --mapping <file> --mode initial' });
    assert.equal(toProtocolError(load).hint, 'Run a new initial load: the "Delta Sync: Run Initial Load" command on the mapping');
    const dl = new SyncError('target', 'x', { hint: 'or set "deadLetter": true in the mapping to set them aside' });
    assert.match(toProtocolError(dl).hint ?? '', /Open Mapping File/);
  });
});
