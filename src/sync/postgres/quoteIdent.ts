import { SyncError } from '../errors';
import type { TableRef } from '../ports/targetTypes';

/**
 * Quotes a Postgres identifier. Every identifier the engine puts into SQL goes through
 * this, always quoted (never "only when needed"): case, reserved words ("select", "user")
 * and any punctuation are then preserved exactly. Embedded double quotes are doubled.
 * NUL cannot be part of an identifier (the protocol is NUL-terminated) and is refused.
 * Names longer than 63 bytes are refused too: Postgres would silently truncate them,
 * which could make two mapped columns collide.
 */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new SyncError('mapping', 'An empty name cannot be used as a Postgres identifier.', {
      hint: 'Give the table, schema or column a non-empty name in the mapping.',
    });
  }
  if (name.includes('\u0000')) {
    throw new SyncError('mapping', `The name ${JSON.stringify(name)} contains a NUL character, which Postgres identifiers cannot hold.`, {
      column: name,
      hint: 'Rename the column in the mapping.',
    });
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new SyncError('mapping', `The name ${JSON.stringify(name)} is longer than ${MAX_IDENTIFIER_BYTES} bytes; Postgres would truncate it.`, {
      column: name,
      hint: 'Give it a shorter target name in the mapping.',
    });
  }
  return '"' + name.replace(/"/g, '""') + '"';
}

/**
 * A Postgres string literal in the E'' form (backslashes doubled), so it means the same
 * text whatever standard_conforming_strings is. Text cannot hold NUL in Postgres; callers
 * never pass one (formatValue marks such values invalid first).
 */
export function quoteLiteral(s: string): string {
  return `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Postgres' NAMEDATALEN - 1 (default build). */
export const MAX_IDENTIFIER_BYTES = 63;

/** `"schema"."table"` (or just `"table"` without a schema), both parts quoted. */
export function qualified(schema: string | undefined, table: string): string {
  return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** `qualified` for a TableRef. */
export function qualifiedRef(ref: TableRef): string {
  return qualified(ref.schema, ref.name);
}

/** Human-readable `schema.table` for messages (not SQL). */
export function displayName(ref: TableRef): string {
  return ref.schema === undefined ? ref.name : `${ref.schema}.${ref.name}`;
}

/**
 * Derives a helper-object name (staging table, index) from a base name plus a suffix and
 * keeps it within 63 bytes by cutting the base (on a character boundary), so the result
 * is never silently truncated by the server.
 */
export function derivedName(base: string, suffix: string): string {
  const room = MAX_IDENTIFIER_BYTES - Buffer.byteLength(suffix, 'utf8');
  let out = '';
  for (const ch of base) {
    if (Buffer.byteLength(out + ch, 'utf8') > room) break;
    out += ch;
  }
  return out + suffix;
}
