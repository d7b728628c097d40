import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncError } from '../errors';
import { mappingSchema } from './mappingSchema';
import type { Mapping } from './mappingSchema';

/** One problem in a mapping file: a dotted field path (`columns.rename.email`) and why. */
export interface MappingIssue {
  path: string;
  message: string;
}

/** `['columns', 'include', 2]` -> `columns.include[2]`; keys that are not identifiers are quoted. */
export function formatIssuePath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s)) out += out === '' ? s : `.${s}`;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out === '' ? '(root)' : out;
}

/**
 * Checks that need more than one field. Runs only on a mapping that passed the schema,
 * so the types are trusted. Rename/key relations are resolved statically here; the checks
 * that need the Delta schema live in resolveColumns.
 */
export function crossFieldIssues(m: Mapping): MappingIssue[] {
  const issues: MappingIssue[] = [];
  const rename = m.columns.rename ?? {};
  const exclude = new Set(m.columns.exclude ?? []);
  const include = m.columns.include ? new Set(m.columns.include) : undefined;

  // Rename targets must be unique, or two Delta columns would land in one Postgres column.
  const byTarget = new Map<string, string>();
  for (const [src, tgt] of Object.entries(rename)) {
    const prev = byTarget.get(tgt);
    if (prev !== undefined) {
      issues.push({
        path: formatIssuePath(['columns', 'rename', src]),
        message: `renames to "${tgt}", which "${prev}" is already renamed to; target names must be unique`,
      });
    } else byTarget.set(tgt, src);
    if (exclude.has(src)) {
      issues.push({
        path: formatIssuePath(['columns', 'rename', src]),
        message: `renames column "${src}", which columns.exclude removes`,
      });
    }
  }
  if (include) {
    for (const c of m.columns.exclude ?? []) {
      if (include.has(c)) {
        issues.push({
          path: formatIssuePath(['columns', 'exclude']),
          message: `lists "${c}", which columns.include also lists; name it in one of them`,
        });
      }
    }
  }

  // Key columns are target names; find the Delta column each one comes from.
  const sourceOf = (target: string): string => byTarget.get(target) ?? target;
  (m.key ?? []).forEach((k, i) => {
    const src = sourceOf(k);
    if (exclude.has(src) || (include && !include.has(src))) {
      issues.push({
        path: formatIssuePath(['key', i]),
        message: `key column "${k}"${src !== k ? ` (Delta column "${src}")` : ''} is excluded by columns.${exclude.has(src) ? 'exclude' : 'include'}; key columns must be synced`,
      });
    }
  });

  /** Why `col` is already a data column of the mapping (renamed to, included, key, typed), or undefined. */
  const dataColumnClash = (col: string, typed: string): string | undefined =>
    byTarget.has(col)
      ? `columns.rename maps "${byTarget.get(col)}" to it`
      : include?.has(col) && rename[col] === undefined
        ? 'columns.include syncs a Delta column of that name'
        : (m.key ?? []).includes(col)
          ? 'it is a key column'
          : m.columns.types?.[col] !== undefined
            ? typed
            : undefined;

  if (m.deletes.mode === 'soft-delete') {
    const col = m.deletes.column;
    const clash = dataColumnClash(col, 'columns.types gives it a type (its type follows deletes.kind)');
    if (clash) {
      issues.push({
        path: 'deletes.column',
        message: `"${col}" is also a data column (${clash}); the soft-delete marker needs a column of its own`,
      });
    }
  }

  // Lineage columns are written by the sync alone: none may be a mapped column (the checks
  // that need the Delta schema are in resolveColumns).
  for (const field of ['version', 'commitTimestamp', 'syncedAt'] as const) {
    const col = m.lineage?.[field];
    if (col === undefined) continue;
    const clash =
      dataColumnClash(col, 'columns.types gives it a type') ??
      (m.deletes.mode === 'soft-delete' && m.deletes.column === col ? 'it is the soft-delete column (deletes.column)' : undefined);
    if (clash) {
      issues.push({
        path: formatIssuePath(['lineage', field]),
        message: `"${col}" is also a mapped column (${clash}); each lineage value needs a column of its own`,
      });
    }
  }
  return issues;
}

/** `file` is absolute or relative to the process cwd; URIs (s3://, abfss://, file://) are kept. */
function resolveSourcePath(p: string, file: string | undefined): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p) || path.isAbsolute(p) || file === undefined) return p;
  return path.resolve(path.dirname(path.resolve(file)), p);
}

/**
 * Validates a mapping and fills in defaults. Throws one SyncError('mapping') listing every
 * issue as `<field path>: <message>` (the schema's issues first; the cross-field checks run
 * only once the schema passes). When `file` is given, a relative `source.path` is resolved
 * against the file's folder, so the returned mapping holds an absolute path.
 */
export function parseMapping(json: unknown, file?: string): Mapping {
  const where = file ? ` ${file}` : '';
  const r = mappingSchema.safeParse(json, {
    // Plainer wording for the two most common mistakes; everything else keeps zod's text.
    error: (iss) => {
      if (iss.code === 'invalid_type' && iss.input === undefined) return 'is required';
      if (iss.code === 'unrecognized_keys') {
        return `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; the JSON schema lists every field)`;
      }
      return undefined;
    },
  });
  let issues: MappingIssue[];
  if (!r.success) {
    issues = r.error.issues.map((i) => ({ path: formatIssuePath(i.path), message: i.message }));
  } else {
    issues = crossFieldIssues(r.data);
  }
  if (issues.length > 0) {
    const lines = issues.map((i) => `  - ${i.path}: ${i.message}`);
    throw new SyncError(
      'mapping',
      `Invalid mapping${where} (${issues.length} issue${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      {
        setting: issues[0]!.path,
        hint: 'Fix the fields listed above; the JSON schema (schemas/mapping.schema.json) describes every field.',
      },
    );
  }
  const m = r.data as Mapping;
  if (m.source.type === 'delta') m.source.path = resolveSourcePath(m.source.path, file);
  return m;
}

/** 1-based line and column of a character offset. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: Math.min(offset, text.length) - lineStart + 1 };
}

/**
 * Where JSON.parse failed. V8's messages differ across Node versions: newer ones say
 * "(line L column C)", older ones "at position N", and a truncated file says neither
 * (then the end of the text is the place).
 */
function jsonErrorLocation(text: string, message: string): { line: number; column: number } {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return { line: Number(lc[1]), column: Number(lc[2]) };
  const pos = /position (\d+)/.exec(message);
  if (pos) return lineColumnAt(text, Number(pos[1]));
  return lineColumnAt(text, text.length);
}

/** Parses mapping text; `file` names the source in messages and anchors relative paths. */
export function parseMappingText(text: string, file?: string): Mapping {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // editors may write a BOM
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const { line, column } = jsonErrorLocation(body, msg);
    throw new SyncError('mapping', `Mapping ${file ?? '(text)'} is not valid JSON at line ${line}, column ${column}: ${msg}`, {
      setting: `${file ?? ''}:${line}:${column}`,
      hint: 'Mapping files are plain JSON: no comments or trailing commas.',
      cause: e,
    });
  }
  return parseMapping(json, file);
}

/** Reads and validates `.delta-sync/<name>.json`. */
export function loadMappingFile(file: string): Mapping {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncError('mapping', `Cannot read mapping file ${file}: ${code ?? String(e)}`, {
      setting: file,
      hint: code === 'ENOENT' ? 'Check the path; mapping files live in .delta-sync/<name>.json.' : undefined,
      cause: e,
    });
  }
  return parseMappingText(text, file);
}
