import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Reads the reference results in `delta-tables/expected/`: pretty-printed tables (arrow /
 * Spark `show()` style, `+---+` borders, `|`-separated cells) and their file names, which
 * encode the table and the CDF range. Cells stay text: comparing them with reader values is
 * the test's job, by column type.
 */

export interface PrettyTable {
  /** `#` comment lines at the top, without the leading `# `. */
  comments: string[];
  columns: string[];
  /** Cell text, trimmed; `null` where the cell is empty or reads NULL / null. */
  rows: (string | null)[][];
}

/** Parses a pretty-printed table; throws on a line that is neither border, comment nor row. */
export function parsePrettyTable(text: string, source = 'expected table'): PrettyTable {
  const comments: string[] = [];
  let columns: string[] | undefined;
  const rows: (string | null)[][] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trimEnd();
    if (line === '') return;
    if (line.startsWith('#')) {
      comments.push(line.replace(/^#\s?/, ''));
      return;
    }
    if (/^\+[-+]*\+$/.test(line)) return; // border
    if (!line.startsWith('|') || !line.endsWith('|')) {
      throw new Error(`${source}:${i + 1}: not a table line: ${line}`);
    }
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
    if (!columns) {
      columns = cells;
      return;
    }
    if (cells.length !== columns.length) {
      throw new Error(`${source}:${i + 1}: ${cells.length} cells, header has ${columns.length}`);
    }
    // The reference printers show a null as an empty cell (arrow) or NULL / null (Spark);
    // no expected file holds the string "null" as data, so reading these as null is safe.
    rows.push(cells.map((c) => (c === '' || c === 'NULL' || c === 'null' ? null : c)));
  });
  if (!columns) throw new Error(`${source}: no header row`);
  return { comments, columns, rows };
}

export function readPrettyTable(file: string): PrettyTable {
  return parsePrettyTable(fs.readFileSync(file, 'utf8'), path.basename(file));
}

/** A CDF range as the file name gives it: versions inclusive, timestamps as ISO UTC strings. */
export interface ExpectedCdfRange {
  startingVersion?: number;
  startingTimestamp?: string;
  endingVersion?: number;
  endingTimestamp?: string;
}

export type ExpectedFileName =
  | { kind: 'cdf'; table: string; range: ExpectedCdfRange; file: string }
  | { kind: 'snapshot-parquet'; table: string; file: string }
  | { kind: 'snapshot-text'; table: string; subset: string | undefined; file: string };

// Timestamps in file names write ':' as '-' in the time part: 2024-01-06T15-44-59.570.
const TS = String.raw`\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?`;
const BOUND = String.raw`(?:v(\d+)|ts-(${TS}))`;
const RANGE_RE = new RegExp(String.raw`^(?:from-${BOUND})?(?:\.?to-${BOUND})?$`);

/** `2024-01-06T15-44-59.570` -> `2024-01-06T15:44:59.570Z`. */
export function fileNameTimestampToIso(s: string): string {
  const [date, time] = s.split('T');
  return `${date}T${time.replace(/-/g, ':')}Z`;
}

/** Parses the CDF range part of a file name (`from-v0.to-ts-2023-12-22T17-10-21.675`). */
export function parseCdfRange(range: string): ExpectedCdfRange {
  const m = RANGE_RE.exec(range);
  if (!m || range === '') throw new Error(`unrecognised CDF range in file name: ${range}`);
  const out: ExpectedCdfRange = {};
  if (m[1] !== undefined) out.startingVersion = Number(m[1]);
  if (m[2] !== undefined) out.startingTimestamp = fileNameTimestampToIso(m[2]);
  if (m[3] !== undefined) out.endingVersion = Number(m[3]);
  if (m[4] !== undefined) out.endingTimestamp = fileNameTimestampToIso(m[4]);
  return out;
}

/** Classifies one entry of `expected/`; undefined for anything else (READMEs, hidden files). */
export function parseExpectedFileName(name: string): ExpectedFileName | undefined {
  let m = /^(.+?)\.cdf\.(.+)\.txt$/.exec(name);
  if (m) return { kind: 'cdf', table: m[1], range: parseCdfRange(m[2]), file: name };
  m = /^(.+?)\.snapshot\.latest$/.exec(name);
  if (m) return { kind: 'snapshot-parquet', table: m[1], file: name };
  m = /^(.+?)\.snapshot\.latest(?:\.(.+))?\.txt$/.exec(name);
  if (m) return { kind: 'snapshot-text', table: m[1], subset: m[2], file: name };
  return undefined;
}

/** Every classified entry of `<sharedDir>/expected`, sorted by name. */
export function listExpectedFiles(sharedDir: string): ExpectedFileName[] {
  const dir = path.join(sharedDir, 'expected');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map(parseExpectedFileName)
    .filter((e): e is ExpectedFileName => e !== undefined);
}

/**
 * Finds the table folder (`delta-rs/<t>` or `delta-kernel-rs/<t>`). The expected file's first
 * comment names it (`# delta-kernel-rs/cdf-table-simple, ...`); otherwise the first folder
 * holding a `_delta_log` wins.
 */
export function locateTable(sharedDir: string, table: string, comments: string[] = []): string | undefined {
  const named = comments.map((c) => /^([\w.-]+\/[\w.-]+),/.exec(c)?.[1]).find((x) => x !== undefined);
  const candidates = [...(named ? [named] : []), `delta-rs/${table}`, `delta-kernel-rs/${table}`];
  for (const rel of candidates) {
    if (path.basename(rel) !== table) continue;
    const p = path.join(sharedDir, rel);
    if (fs.existsSync(path.join(p, '_delta_log'))) return p;
  }
  return undefined;
}

/** One `### <source>/<name>` section of the shared README, its `- Key: value` bullets. */
export interface ReadmeTable {
  /** `delta-rs/cdf-table` */
  id: string;
  name: string;
  fields: Record<string, string>;
}

/** The tables of the README index (`| delta-rs/x | ... |`), in index order. */
export function readmeIndex(sharedDir: string): string[] {
  const text = fs.readFileSync(path.join(sharedDir, 'README.md'), 'utf8');
  const start = text.indexOf('## Index');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end === -1 ? undefined : end);
  const ids: string[] = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*((?:delta-rs|delta-kernel-rs)\/[^\s|]+)\s*\|/.exec(line);
    if (m) ids.push(m[1]);
  }
  return ids;
}

/** The per-table sections of the README (`## Tables`). */
export function readmeTables(sharedDir: string): ReadmeTable[] {
  const text = fs.readFileSync(path.join(sharedDir, 'README.md'), 'utf8');
  const out: ReadmeTable[] = [];
  let current: ReadmeTable | undefined;
  for (const line of text.split('\n')) {
    const h = /^###\s+((?:delta-rs|delta-kernel-rs)\/(\S+))\s*$/.exec(line);
    if (h) {
      current = { id: h[1], name: h[2], fields: {} };
      out.push(current);
      continue;
    }
    if (/^#{1,2}\s/.test(line)) {
      current = undefined;
      continue;
    }
    const b = /^- ([^:]+):\s*(.*)$/.exec(line);
    if (current && b) current.fields[b[1].trim()] = b[2].trim();
  }
  return out;
}
