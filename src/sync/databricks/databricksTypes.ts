import { SyncError } from '../errors';
import type { DeltaField, DeltaMap, DeltaStruct, DeltaType, DeltaValue, PrimitiveTypeName } from '../delta/types';
import { formatDeltaType } from '../delta/schema';
import { decimalToString, decimalUnscaled, parsePartitionValue, shortestFloat32 } from '../delta/values';

/**
 * Databricks SQL type text -> DeltaType, and driver values -> the engine's value
 * representation (src/sync/delta/types.ts).
 *
 * Type text comes from `getColumns` (TYPE_NAME) or `DESCRIBE TABLE` (data_type). Both
 * spellings are accepted: Spark's catalog string (`struct<a:int,b:array<bigint>>`,
 * `decimal(10,2)`) and the SQL form (`STRUCT<a: INT NOT NULL COMMENT 'x', b: ARRAY<BIGINT>>`).
 * The way back is not needed: no statement the source runs names a type other than STRING,
 * and types are shown to people with formatDeltaType, as for local tables.
 */

const PRIMITIVE_ALIASES: Record<string, PrimitiveTypeName> = {
  string: 'string',
  varchar: 'string',
  char: 'string',
  bigint: 'long',
  long: 'long',
  int: 'integer',
  integer: 'integer',
  smallint: 'short',
  short: 'short',
  tinyint: 'byte',
  byte: 'byte',
  float: 'float',
  real: 'float',
  double: 'double',
  boolean: 'boolean',
  binary: 'binary',
  date: 'date',
  timestamp: 'timestamp',
  timestamp_ltz: 'timestamp',
  timestamp_ntz: 'timestamp_ntz',
};

/** Parses Databricks type text; throws SyncError('delta-protocol') naming the column for types the engine cannot sync (variant, interval, ...). */
export function parseDatabricksType(text: string, column = '?', table?: string): DeltaType {
  const p = new TypeParser(text, column, table);
  const t = p.type();
  p.end();
  return t;
}

class TypeParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly column: string,
    private readonly table: string | undefined,
  ) {}

  type(): DeltaType {
    this.ws();
    const word = this.word().toLowerCase();
    if (word === 'struct') {
      this.expect('<');
      const fields: DeltaField[] = [];
      this.ws();
      if (!this.peek('>')) {
        for (;;) {
          this.ws();
          const name = this.fieldName();
          this.ws();
          this.expect(':');
          const type = this.type();
          let nullable = true;
          // Field modifiers of the SQL spelling: NOT NULL, COMMENT '...'.
          for (;;) {
            this.ws();
            if (this.peekWord('not')) {
              this.word();
              this.ws();
              if (this.word().toLowerCase() !== 'null') throw this.fail('NULL expected after NOT');
              nullable = false;
            } else if (this.peekWord('comment')) {
              this.word();
              this.ws();
              this.quoted();
            } else break;
          }
          fields.push({ name, type, nullable, metadata: {}, physicalName: name });
          this.ws();
          if (this.peek(',')) {
            this.i++;
            continue;
          }
          break;
        }
      }
      this.expect('>');
      return { kind: 'struct', fields };
    }
    if (word === 'array') {
      this.expect('<');
      const elementType = this.type();
      this.expect('>');
      return { kind: 'array', elementType, containsNull: true };
    }
    if (word === 'map') {
      this.expect('<');
      const keyType = this.type();
      this.expect(',');
      const valueType = this.type();
      this.expect('>');
      return { kind: 'map', keyType, valueType, valueContainsNull: true };
    }
    if (word === 'decimal' || word === 'dec' || word === 'numeric') {
      this.ws();
      if (!this.peek('(')) return { kind: 'decimal', precision: 10, scale: 0 };
      this.i++;
      const precision = Number(this.digits());
      this.ws();
      let scale = 0;
      if (this.peek(',')) {
        this.i++;
        scale = Number(this.digits());
      }
      this.expect(')');
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) throw this.fail(`invalid decimal(${precision},${scale})`);
      return { kind: 'decimal', precision, scale };
    }
    if (word === 'varchar' || word === 'char') {
      // varchar(n) / char(n): strings with a length check on write; the length is irrelevant here.
      this.ws();
      if (this.peek('(')) {
        this.i++;
        this.digits();
        this.expect(')');
      }
      return { kind: 'primitive', name: 'string' };
    }
    const prim = PRIMITIVE_ALIASES[word];
    if (prim) return { kind: 'primitive', name: prim };
    throw new SyncError('delta-protocol', `Column '${this.column}' has type ${this.s.trim()}, which the sync cannot read`, {
      table: this.table,
      column: this.column,
      hint: 'Exclude the column in the mapping (columns.exclude), or sync from a view that casts it to a supported type.',
    });
  }

  end(): void {
    this.ws();
    if (this.i !== this.s.length) throw this.fail('unexpected text');
  }

  private fail(why: string): SyncError {
    return new SyncError('delta-protocol', `Cannot read the type of column '${this.column}' (${why} at ${this.i} in "${this.s}")`, {
      table: this.table,
      column: this.column,
    });
  }
  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i] as string)) this.i++;
  }
  private peek(c: string): boolean {
    return this.s[this.i] === c;
  }
  private peekWord(w: string): boolean {
    const rest = this.s.slice(this.i, this.i + w.length + 1).toLowerCase();
    return rest.startsWith(w) && !/[A-Za-z0-9_]/.test(rest[w.length] ?? '');
  }
  private expect(c: string): void {
    this.ws();
    if (this.s[this.i] !== c) throw this.fail(`'${c}' expected`);
    this.i++;
  }
  private word(): string {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    if (!m) throw this.fail('type name expected');
    this.i += m[0].length;
    return m[0];
  }
  private digits(): string {
    this.ws();
    const m = /^\d+/.exec(this.s.slice(this.i));
    if (!m) throw this.fail('number expected');
    this.i += m[0].length;
    return m[0];
  }
  private quoted(): void {
    const q = this.s[this.i];
    if (q !== "'" && q !== '"') throw this.fail('quoted text expected');
    this.i++;
    while (this.i < this.s.length && this.s[this.i] !== q) this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.i++;
  }
  /** A struct field name: backquoted (`` `a``b` ``) or up to the ':'. */
  private fieldName(): string {
    if (this.peek('`')) {
      let out = '';
      this.i++;
      for (;;) {
        if (this.i >= this.s.length) throw this.fail('unterminated `name`');
        const c = this.s[this.i] as string;
        if (c === '`') {
          if (this.s[this.i + 1] === '`') {
            out += '`';
            this.i += 2;
            continue;
          }
          this.i++;
          return out;
        }
        out += c;
        this.i++;
      }
    }
    const j = this.s.indexOf(':', this.i);
    if (j < 0) throw this.fail("':' expected");
    const name = this.s.slice(this.i, j).trim();
    this.i = j;
    return name;
  }
}

/** A Databricks identifier in back-quotes (a back-quote inside is doubled): safe for any name. */
export function quoteIdentifier(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export interface TableName {
  catalog: string;
  schema: string;
  table: string;
}

/** Splits `catalog.schema.table` (parts may be back-quoted); throws SyncError('usage') otherwise. */
export function parseTableName(text: string, what = 'table'): TableName {
  const parts: string[] = [];
  const re = /\s*(?:`((?:[^`]|``)+)`|([^.`\s]+))\s*(\.|$)/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) break;
    parts.push(m[1] !== undefined ? m[1].replace(/``/g, '`') : (m[2] as string));
    i = re.lastIndex;
    if (m[3] === '') break;
  }
  if (i !== text.length || parts.length !== 3) {
    throw new SyncError('usage', `"${text}" is not a three-part ${what} name catalog.schema.table.`, {
      setting: 'source.table',
      hint: 'Write it as catalog.schema.table, e.g. main.sales.customers; back-quote parts with other characters: main.`my schema`.customers.',
    });
  }
  return { catalog: parts[0] as string, schema: parts[1] as string, table: parts[2] as string };
}

export function quoteTableName(t: TableName): string {
  return `${quoteIdentifier(t.catalog)}.${quoteIdentifier(t.schema)}.${quoteIdentifier(t.table)}`;
}

/** `catalog.schema.table` for messages and checkpoint names (back-quoted only where needed). */
export function formatTableName(t: TableName): string {
  const part = (s: string): string => (/^[A-Za-z0-9_-]+$/.test(s) ? s : quoteIdentifier(s));
  return `${part(t.catalog)}.${part(t.schema)}.${part(t.table)}`;
}

// ---------------------------------------------------------------- values

const MS_PER_DAY = 86_400_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array) && !(v instanceof Map);
}

function badValue(type: DeltaType, value: unknown, column: string): SyncError {
  return new SyncError('delta-file', `Databricks returned ${typeof value} ${String(value).slice(0, 40)} for column '${column}' of type ${formatDeltaType(type)}`, {
    column,
    hint: 'This is a driver/reader mismatch; please report it with the column type.',
  });
}

/**
 * Converts one value as @databricks/sql returns it (Arrow results, preserveBigNumericPrecision
 * on) to the engine representation of `type`. How the source selects columns decides some
 * shapes: top-level timestamps arrive as `unix_micros()` bigints, timestamp_ntz as the
 * `CAST(... AS STRING)` wall-clock text and maps as `map_entries()` arrays, all exact.
 * Nested timestamps arrive as a JS Date and keep milliseconds only (a driver limit).
 */
export function fromDriverValue(value: unknown, type: DeltaType, column: string): DeltaValue {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'decimal': {
      const text = typeof value === 'string' ? value : typeof value === 'bigint' ? value.toString() : undefined;
      if (text === undefined) throw badValue(type, value, column);
      const unscaled = decimalUnscaled(text, type.scale);
      if (unscaled === undefined) throw badValue(type, value, column);
      return decimalToString(unscaled, type.scale);
    }
    case 'struct': {
      if (!isRecord(value)) throw badValue(type, value, column);
      const out: DeltaStruct = {};
      for (const f of type.fields) out[f.name] = fromDriverValue(value[f.name], f.type, `${column}.${f.name}`);
      return out;
    }
    case 'array': {
      if (!Array.isArray(value)) throw badValue(type, value, column);
      return value.map((v) => fromDriverValue(v, type.elementType, `${column}.element`));
    }
    case 'map': {
      const out: DeltaMap = new Map();
      if (Array.isArray(value)) {
        // map_entries(): [{key, value}, ...], order and key types kept.
        for (const e of value) {
          if (!isRecord(e)) throw badValue(type, value, column);
          out.set(fromDriverValue(e.key, type.keyType, `${column}.key`), fromDriverValue(e.value, type.valueType, `${column}.value`));
        }
        return out;
      }
      if (value instanceof Map) {
        for (const [k, v] of value) out.set(fromDriverValue(k, type.keyType, `${column}.key`), fromDriverValue(v, type.valueType, `${column}.value`));
        return out;
      }
      if (!isRecord(value)) throw badValue(type, value, column);
      // A nested map comes as a plain object: its keys are strings, parse them back.
      for (const [k, v] of Object.entries(value)) out.set(keyFromText(k, type.keyType, column), fromDriverValue(v, type.valueType, `${column}.value`));
      return out;
    }
    case 'primitive':
      return primitiveFromDriver(value, type.name, type, column);
  }
}

function keyFromText(k: string, type: DeltaType, column: string): DeltaValue {
  if (type.kind === 'primitive' && (type.name === 'string' || type.name === 'binary')) return type.name === 'string' ? k : new TextEncoder().encode(k);
  if (type.kind === 'primitive' || type.kind === 'decimal') return parsePartitionValue(k, type, `${column}.key`);
  throw badValue(type, k, column);
}

function primitiveFromDriver(value: unknown, name: PrimitiveTypeName, type: DeltaType, column: string): DeltaValue {
  switch (name) {
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'byte':
    case 'short':
    case 'integer':
      if (typeof value === 'number') return value;
      if (typeof value === 'bigint') return Number(value);
      break;
    case 'long':
      if (typeof value === 'bigint') return value;
      // Only safe integers may come as numbers (the driver does so when the flag is off).
      if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
      if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
      break;
    case 'float':
      if (typeof value === 'number') return shortestFloat32(value);
      break;
    case 'double':
      if (typeof value === 'number') return value;
      break;
    case 'binary':
      if (value instanceof Uint8Array) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
      break;
    case 'date':
      if (value instanceof Date) return Math.floor(value.getTime() / MS_PER_DAY);
      if (typeof value === 'string') return parsePartitionValue(value, type, column);
      break;
    case 'timestamp':
    case 'timestamp_ntz':
      if (typeof value === 'bigint') return value; // unix_micros()
      if (typeof value === 'string') return parsePartitionValue(value, type, column); // CAST(... AS STRING)
      if (value instanceof Date) return BigInt(value.getTime()) * 1000n; // nested: ms only
      break;
  }
  throw badValue(type, value, column);
}
