import { SyncError } from '../errors';
import type { ChangeRow, Row } from '../delta/types';
import type { ChangesToApply } from './applyDeletePolicy';
import { KeySet } from './KeySet';
import { DUPLICATE_EXAMPLES, MUST_BE_NEW, NetChangeBuffer, describeKey } from './netChanges';
import type { DuplicateKey, NetChangeBufferOptions, NetKey } from './netChanges';

/**
 * What the writer does, in order. A transaction is one or more `apply` steps followed by
 * one `commit`; the first `apply` after a commit (or at the start) opens it.
 *  - apply: stage and apply these net changes (deletes before upserts; no key is in both).
 *    Keys may recur in a later apply of the same transaction: applying the steps in order
 *    gives the net effect.
 *  - commit: write the checkpoint and commit. `version` is the last version the
 *    transaction covers; null for the end of the stream (the caller's end version, so that
 *    trailing versions without change rows are covered too).
 */
export type PlanStep =
  | {
    type: 'apply'; changes: ChangesToApply; /** Change rows read for it. */ rowsIn: number; /** Keys upserted twice within one version (duplicate keys in the table). */ duplicateKeys: number;
    /**
     * A part of a version applied in parts, not its last: an upsert marked MUST_BE_NEW here
     * may be excused by a later part (`changes.excused`), so the writer must not refuse it
     * yet, only note it.
     */
    provisional?: boolean;
  }
  | { type: 'commit'; version: number | null; /** Versions the transaction covers. */ fromVersion: number; /** Parts it was applied in. */ parts: number };

export interface PlanStepsOptions extends NetChangeBufferOptions {
  /** Commit once this many distinct keys are held, at the next version boundary (batch.maxRows). */
  maxRows: number;
  /** Same, for approximate bytes (batch.maxBytes). */
  maxBytes?: number;
  /**
   * Change rows of one version after which that version is applied in parts of about this
   * many keys, inside its transaction, instead of being held whole in memory. Undefined:
   * never (every transaction is one apply step, e.g. for dead letters).
   */
  partRows?: number;
  /**
   * A key upserted twice within one version (the Delta table holds the key twice): 'fail'
   * (default) refuses the version, naming the keys; 'last-wins' keeps whichever row the
   * reader met last (mapping setting duplicateKeys). The same policy covers a version that
   * inserts a key the table already holds (an earlier version upserted it and nothing
   * removed it): 'fail' refuses it here when that earlier version is in the same
   * transaction, and marks the other inserts (MUST_BE_NEW) so that the writer refuses
   * those whose key the target holds; 'last-wins' applies it as an update.
   */
  duplicateKeys?: DuplicateKeyPolicy;
  /** The source as errors name it (table path or name). */
  table?: string;
}

export type DuplicateKeyPolicy = 'fail' | 'last-wins';

/**
 * The error that refuses duplicate keys: the version(s), the first few keys and how many.
 * With `last-wins` nothing is thrown.
 */
function checkDuplicates(count: number, examples: readonly DuplicateKey[], options: PlanStepsOptions): void {
  if (count === 0 || options.duplicateKeys === 'last-wins') return;
  const versions = [...new Set(examples.map((d) => d.version))];
  const first = versions[0];
  const shown = examples.map((d) => `${d.key}`).join('; ');
  const more = count > examples.length ? ` and ${count - examples.length} more` : '';
  throw new SyncError(
    'mapping',
    `The Delta table${options.table ? ` ${options.table}` : ''} holds duplicate keys: ${count} row${count === 1 ? '' : 's'} repeat${count === 1 ? 's' : ''} a key written earlier in the same commit (version${versions.length === 1 ? '' : 's'} ${versions.join(', ')}: ${shown}${more}); nothing of that version was applied`,
    {
      ...(options.table === undefined ? {} : { table: options.table }),
      ...(first === undefined ? {} : { version: first }),
      setting: 'duplicateKeys',
      hint: 'Fix the duplicates in the Delta table (or pick a key that is unique there), then run the sync again. To keep one row per key anyway (whichever the reader meets last, not a chosen one), set "duplicateKeys": "last-wins" in the mapping.',
    },
  );
}

/** Gives `to` (the key's later net change) the MUST_BE_NEW mark of `from` (its earlier one), or none. */
function carryMark(from: Row, to: Row): void {
  const at = from[MUST_BE_NEW];
  if (at === undefined) delete to[MUST_BE_NEW];
  else to[MUST_BE_NEW] = at;
}

/**
 * The error that refuses a version inserting a key an earlier version of the same
 * transaction left in the table. With `last-wins` nothing is thrown.
 */
function checkReinserted(count: number, examples: readonly DuplicateKey[], keyColumns: readonly string[], options: PlanStepsOptions): void {
  if (count === 0 || options.duplicateKeys === 'last-wins') return;
  throw reinsertError(count, examples, keyColumns, options);
}

function reinsertError(count: number, examples: readonly DuplicateKey[], keyColumns: readonly string[], options: PlanStepsOptions): SyncError {
  const versions = [...new Set(examples.map((d) => d.version))].sort((a, b) => a - b);
  const shown = examples.map((d) => d.key).join('; ');
  const more = count > examples.length ? ` and ${count - examples.length} more` : '';
  const first = versions[0];
  return new SyncError(
    'mapping',
    `The Delta table${options.table ? ` ${options.table}` : ''} holds duplicate keys: version${versions.length === 1 ? '' : 's'} ${versions.join(', ')} insert${versions.length === 1 ? 's' : ''} ${count === 1 ? 'a key' : `${count} keys`} that an earlier version wrote and nothing deleted since (key column${keyColumns.length === 1 ? '' : 's'} ${keyColumns.join(', ')}: ${shown}${more}); the target holds one row per key and cannot hold both, so nothing of those versions was applied`,
    {
      ...(options.table === undefined ? {} : { table: options.table }),
      ...(first === undefined ? {} : { version: first }),
      setting: 'duplicateKeys',
      hint: DUPLICATE_INSERT_HINT,
    },
  );
}

/** The hint of both refusals of an insert whose key the table already holds (here and in the writer). */
export const DUPLICATE_INSERT_HINT =
  'Find out why the Delta table holds these keys twice (rows appended again?) and remove the extra rows, or pick a key that is unique there, then run the sync again. To apply such an insert as an update of the row already synced (the last write wins; the target keeps one row per key), set "duplicateKeys": "last-wins" in the mapping. See "holds duplicate keys" in docs/errors.md.';

/**
 * Cuts a change stream (arrays of change rows in non-decreasing commitVersion order, as the
 * readers deliver them) into transactions that each end at a version boundary, so every
 * commit leaves the target at the state of one version and its checkpoint says which.
 *
 * Small versions are netted together (NetChangeBuffer) until the batch holds maxRows keys
 * or maxBytes. A version with more than `partRows` change rows is not held whole: the
 * batch so far (earlier versions and the start of this one) becomes the first part of its
 * transaction, and the rest of the version follows in parts as it is read, so the caller
 * can apply one part while the next is read, with memory bounded by a part plus the keys
 * the version upserted (a KeySet, off the JS heap: its bytes and about 12 more a key) and
 * its removals. Net effect across parts, the rules of NetChangeBuffer:
 *  - upserts are applied as they come; a key upserted by this version is remembered;
 *  - removals (delete, update_preimage) are held to the end of the transaction, since a
 *    later upsert of the same key in the same version cancels them (delete + re-insert, or
 *    a preimage whose postimage comes in a later part); a removal of a key this version
 *    already upserted is dropped;
 *  - upserts of the earlier versions in the first part are held too, and dropped when
 *    this version changes their key.
 * The held changes form the transaction's last part. So every key is applied once, with
 * its net change, and the parts give the counts a single net batch would (a table with
 * duplicate keys in one version aside).
 */
export async function* planSteps(
  changes: AsyncIterable<readonly ChangeRow[]> | Iterable<readonly ChangeRow[]>,
  keyColumns: readonly string[],
  options: PlanStepsOptions,
): AsyncGenerator<PlanStep> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const partRows = options.partRows;
  const buffer = new NetChangeBuffer(keyColumns, { ...options, checkNewKeys: options.duplicateKeys !== 'last-wins' });
  let current: number | null = null;
  /** Change rows of version `current` seen so far. */
  let currentRows = 0;
  /** First version of the open transaction. */
  let firstVersion: number | null = null;
  /**
   * Set while `current` is applied in parts. `upserted`: keys this version upserted.
   * `held`: removals waiting for the end of the version. `earlier`: upserts of earlier
   * versions of the transaction (from the first part), applied at the end unless this
   * version changes their key, so that every key is applied once, with its net change.
   */
  let streamed:
    | {
      upserted: KeySet; held: Map<NetKey, { row: Row; ts: number }>; earlier: Map<NetKey, Row>; parts: number; duplicates: number; examples: DuplicateKey[];
      /** Inserts of this version of a key an earlier version of the transaction left in the table. */
      reinserted: number; reExamples: DuplicateKey[];
      /** Upserts of this version of a key left in the table before, no removal of it seen yet: re-inserts unless one comes. */
      suspects: Map<NetKey, DuplicateKey>;
      /** Keys of this version applied marked MUST_BE_NEW (no removal of them seen yet in this version). */
      flagged: KeySet;
      /** Key rows of `flagged` keys whose removal came in a later part: their insert replaced a row, the writer excuses them. */
      excused: Row[];
    }
    | undefined;

  function* commitBatch(version: number | null): Generator<PlanStep> {
    const net = buffer.drain();
    checkDuplicates(net.duplicateKeys, net.duplicateExamples, options);
    checkReinserted(net.reinsertedKeys, net.reinsertedExamples, keyColumns, options);
    yield { type: 'apply', changes: net, rowsIn: net.rowsIn, duplicateKeys: net.duplicateKeys };
    yield { type: 'commit', version, fromVersion: firstVersion as number, parts: 1 };
  }

  /** A row of version `current` as an error names its key. */
  const exampleOf = (row: Row): DuplicateKey => ({ version: current as number, key: describeKey(keyColumns, keyColumns.map((c) => row[c] ?? null)) });

  /**
   * Applies what the part buffer holds: upserts now, removals held (or dropped).
   * `complete`: the version ends with this part. Its parts are provisional (a removal in a
   * later part may excuse an insert of this one); the last part of the version is not.
   */
  function* flushPart(complete: boolean): Generator<PlanStep> {
    const s = streamed as NonNullable<typeof streamed>;
    const net = buffer.drain(complete);
    if (net.rowsIn === 0) return;
    let duplicates = net.duplicateKeys;
    for (const d of net.duplicateExamples) if (s.examples.length < DUPLICATE_EXAMPLES) s.examples.push(d);
    s.reinserted += net.reinsertedKeys;
    for (const d of net.reinsertedExamples) if (s.reExamples.length < DUPLICATE_EXAMPLES) s.reExamples.push(d);
    const upserts: Row[] = [];
    for (let i = 0; i < net.upserts.length; i++) {
      const key = net.upsertKeys[i] as NetKey;
      const row = net.upserts[i] as Row;
      if (net.upsertVersions[i] !== current) {
        // Only the first part holds earlier versions: their upserts wait for the end.
        s.earlier.set(key, row);
        continue;
      }
      // Left in the table by an earlier version of the first part, and not removed in it.
      if (net.upsertPending[i] === true) s.suspects.set(key, exampleOf(row));
      // What an earlier part did to the key: a removal (held), or an upsert of an earlier version.
      const prior = s.held.get(key)?.row ?? s.earlier.get(key);
      if (prior !== undefined) {
        // Upserted without a removal in this part, the key left in the table before: a re-insert.
        if ((net.upsertNewAt[i] as number) >= 0 && s.earlier.has(key)) s.suspects.set(key, exampleOf(row));
        // Whether the key must be new at the start is the earlier part's to say.
        carryMark(prior, row);
      } else if (row[MUST_BE_NEW] === current) {
        // Marked for this version (a mark of an earlier version of the first part stays: a later
        // removal in this version does not change what that insert found).
        s.flagged.add(key);
      }
      s.held.delete(key);
      s.earlier.delete(key);
      if (!s.upserted.add(key)) {
        duplicates++;
        if (s.examples.length < DUPLICATE_EXAMPLES) s.examples.push({ version: current as number, key: describeKey(keyColumns, keyColumns.map((c) => row[c] ?? null)) });
      }
      upserts.push(row);
    }
    for (let i = 0; i < net.deletes.length; i++) {
      const key = net.deleteKeys[i] as NetKey;
      if (s.upserted.has(key)) {
        // A removal after the upsert of its key in this version: that upsert replaced a row.
        s.suspects.delete(key);
        if (s.flagged.delete(key)) s.excused.push(net.deletes[i] as Row);
        continue;
      }
      const row = net.deletes[i] as Row;
      const prior = s.earlier.get(key) ?? s.held.get(key)?.row;
      if (prior !== undefined) carryMark(prior, row);
      s.earlier.delete(key);
      s.held.set(key, { row, ts: net.deleteTimestamps[i] as number });
    }
    // Refused at the end of the version (finishStreamed), when all of them are counted; the
    // parts applied until then are in the version's transaction, which is then rolled back.
    s.duplicates += duplicates;
    s.parts++;
    yield { type: 'apply', changes: { upserts, deletes: [], deleteTimestamps: [] }, rowsIn: net.rowsIn, duplicateKeys: duplicates, provisional: true };
  }

  function* finishStreamed(version: number | null): Generator<PlanStep> {
    yield* flushPart(true);
    const s = streamed as NonNullable<typeof streamed>;
    checkDuplicates(s.duplicates, s.examples, options);
    for (const d of s.suspects.values()) {
      s.reinserted++;
      if (s.reExamples.length < DUPLICATE_EXAMPLES) s.reExamples.push(d);
    }
    checkReinserted(s.reinserted, s.reExamples, keyColumns, options);
    const deletes: Row[] = [];
    const deleteTimestamps: number[] = [];
    for (const h of s.held.values()) {
      deletes.push(h.row);
      deleteTimestamps.push(h.ts);
    }
    const upserts = [...s.earlier.values()];
    s.held.clear();
    s.earlier.clear();
    s.parts++;
    const excused = s.excused;
    yield { type: 'apply', changes: { upserts, deletes, deleteTimestamps, ...(excused.length > 0 ? { excused } : {}) }, rowsIn: 0, duplicateKeys: 0 };
    yield { type: 'commit', version, fromVersion: firstVersion as number, parts: s.parts };
    streamed = undefined;
  }

  for await (const rows of changes) {
    for (const change of rows) {
      const v = change.commitVersion;
      if (current !== null && v !== current) {
        if (v < current) {
          throw new SyncError('cdf-range', `Change rows out of order: version ${v} came after version ${current}`, {
            version: v,
            hint: 'This is a bug in the change reader; please report it.',
          });
        }
        if (streamed) {
          yield* finishStreamed(current);
          firstVersion = null;
        } else if (buffer.size >= options.maxRows || buffer.bytes >= maxBytes) {
          yield* commitBatch(current);
          firstVersion = null;
        }
        currentRows = 0;
      }
      current = v;
      firstVersion ??= v;
      buffer.add(change);
      currentRows++;
      if (partRows !== undefined) {
        if (!streamed && currentRows > partRows) {
          streamed = { upserted: new KeySet(), held: new Map(), earlier: new Map(), parts: 0, duplicates: 0, examples: [], reinserted: 0, reExamples: [], suspects: new Map(), flagged: new KeySet(), excused: [] };
          yield* flushPart(false);
        } else if (streamed && buffer.size >= partRows) {
          yield* flushPart(false);
        }
      }
    }
  }
  if (streamed) yield* finishStreamed(null);
  else if (buffer.size > 0) yield* commitBatch(null);
}
