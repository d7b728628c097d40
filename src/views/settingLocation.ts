/**
 * The setting an error names, as something the editor can open: a key of the mapping file
 * (`safety.maxDeleteShare`, `deadLetter`, `schemaDrift`, ...) or a VS Code setting
 * (`deltaSync.*`), and where a mapping key is in the file's text. Plain TS (no vscode):
 * the error carries the setting as a field (SyncError.setting), never parsed from its hint.
 */
import { isSyncError } from '../sync/errors';
import { mappingSchema } from '../sync/mapping/mappingSchema';

export type SettingRef = { scope: 'mapping'; key: string } | { scope: 'vscode'; key: string };

/** The mapping file's top-level keys, from its schema: a setting under one of them is the mapping's. */
const MAPPING_KEYS: ReadonlySet<string> = new Set(Object.keys(mappingSchema.shape));

/**
 * The setting `e` names, when the editor can open it. Connection-string parameters
 * (lock_timeout, sslmode), environment variables (NEON_API_KEY) and server settings are
 * named by errors too, but live in no file the editor opens: undefined for those.
 */
export function settingRefOf(e: unknown): SettingRef | undefined {
  if (!isSyncError(e) || !e.setting) return undefined;
  // A mapping issue inside an array or under a quoted name (key[0], columns["a b"].type): the key that holds it.
  const key = e.setting.replace(/\[.*$/s, '');
  if (key.startsWith('deltaSync.')) return { scope: 'vscode', key };
  return MAPPING_KEYS.has(key.split('.')[0] ?? '') ? { scope: 'mapping', key } : undefined;
}

/**
 * The setting a toast about `e` can open: a `deltaSync.*` setting always; a mapping key only
 * with the mapping's file (`file`, else the one noted for the error by aboutMappingFile).
 */
export function openableSetting(e: unknown, file?: string): { setting: SettingRef; file: string | undefined } | undefined {
  const setting = settingRefOf(e);
  const where = file ?? mappingFileOfError(e);
  if (!setting || (setting.scope === 'mapping' && where === undefined)) return undefined;
  return { setting, file: where };
}

/** The mapping file a thrown error is about, where the command that threw it knew (see aboutMappingFile). */
const fileOfError = new WeakMap<object, string>();

/** Notes that `e` is about the mapping in `file` (a command on a mapping picked in the palette); returns `e`. */
export function aboutMappingFile<E>(e: E, file: string): E {
  if (typeof e === 'object' && e !== null) fileOfError.set(e, file);
  return e;
}

/** The mapping file noted for `e`, if any. */
export function mappingFileOfError(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null ? fileOfError.get(e) : undefined;
}

export interface SettingLocation {
  /** Offset and length of the key's name (quotes included), or of the enclosing object's `{`. */
  offset: number;
  length: number;
  /** The dotted path the file holds: the key itself, or the nearest enclosing key ('' for the top-level object). */
  found: string;
  /** True when the file holds the key itself. */
  exact: boolean;
}

/**
 * Where `key` (dotted: `safety.maxDeleteShare`) is in a mapping file's JSON text: its
 * property name; when the file lacks it, the nearest enclosing object the file has (the
 * top-level object at worst). Text that is not JSON gives offset 0.
 */
export function locateSetting(text: string, key: string): SettingLocation {
  const keys = new Map<string, { offset: number; length: number }>();
  let top: number | undefined;
  try {
    new JsonKeyScanner(text, (path, offset, length) => keys.set(path, { offset, length }), (offset) => (top ??= offset)).document();
  } catch {
    // A broken file: whatever was scanned before the error still locates.
  }
  const parts = key.split('.');
  for (let n = parts.length; n > 0; n--) {
    const path = parts.slice(0, n).join('.');
    const at = keys.get(path);
    if (at) return { ...at, found: path, exact: n === parts.length };
  }
  return { offset: top ?? 0, length: top === undefined ? 0 : 1, found: '', exact: false };
}

/** A small JSON reader that reports each object key with its dotted path and offset (arrays are not descended into). */
class JsonKeyScanner {
  private i = 0;
  constructor(
    private readonly text: string,
    private readonly onKey: (path: string, offset: number, length: number) => void,
    private readonly onTopObject: (offset: number) => void,
  ) {}

  document(): void {
    this.space();
    if (this.text[this.i] === '{') this.onTopObject(this.i);
    this.value('', true);
  }

  private space(): void {
    while (this.i < this.text.length && /\s/.test(this.text[this.i] as string)) this.i++;
  }

  private fail(): never {
    throw new Error(`not JSON at ${this.i}`);
  }

  private value(path: string, keysHere: boolean): void {
    this.space();
    const c = this.text[this.i];
    if (c === '{') return this.object(path, keysHere);
    if (c === '[') return this.array();
    if (c === '"') {
      this.string();
      return;
    }
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(this.text.slice(this.i, this.i + 64));
    if (!m) this.fail();
    this.i += m[0].length;
  }

  private object(path: string, keysHere: boolean): void {
    this.i++; // {
    this.space();
    if (this.text[this.i] === '}') {
      this.i++;
      return;
    }
    for (;;) {
      this.space();
      if (this.text[this.i] !== '"') this.fail();
      const start = this.i;
      const name = this.string();
      const full = path ? `${path}.${name}` : name;
      if (keysHere) this.onKey(full, start, this.i - start);
      this.space();
      if (this.text[this.i] !== ':') this.fail();
      this.i++;
      this.value(full, keysHere);
      this.space();
      const c = this.text[this.i++];
      if (c === '}') return;
      if (c !== ',') this.fail();
    }
  }

  private array(): void {
    this.i++; // [
    this.space();
    if (this.text[this.i] === ']') {
      this.i++;
      return;
    }
    for (;;) {
      // Keys inside arrays (filter conditions) are no setting of their own.
      this.value('', false);
      this.space();
      const c = this.text[this.i++];
      if (c === ']') return;
      if (c !== ',') this.fail();
    }
  }

  private string(): string {
    const start = this.i;
    this.i++; // "
    while (this.i < this.text.length && this.text[this.i] !== '"') this.i += this.text[this.i] === '\\' ? 2 : 1;
    if (this.i >= this.text.length) this.fail();
    this.i++;
    return JSON.parse(this.text.slice(start, this.i)) as string;
  }
}
