import type { ChangeRow, ChangeType, Row } from '../../src/sync/delta/types';

/**
 * Typed builders for Change Data Feed rows: `cdf.insert({ id: 1n }, 3)` is the insert of
 * key 1 in version 3. The version defaults to 1 and the commit timestamp to
 * version * 1000 ms, so rows of one version share a timestamp unless a test says otherwise.
 */
export function changeRow(changeType: ChangeType, values: Row, version = 1, timestamp = version * 1000): ChangeRow {
  return { changeType, commitVersion: version, commitTimestamp: timestamp, values };
}

export const cdf = {
  insert: (values: Row, version?: number, timestamp?: number): ChangeRow => changeRow('insert', values, version, timestamp),
  updatePreimage: (values: Row, version?: number, timestamp?: number): ChangeRow => changeRow('update_preimage', values, version, timestamp),
  updatePostimage: (values: Row, version?: number, timestamp?: number): ChangeRow => changeRow('update_postimage', values, version, timestamp),
  delete: (values: Row, version?: number, timestamp?: number): ChangeRow => changeRow('delete', values, version, timestamp),
};
