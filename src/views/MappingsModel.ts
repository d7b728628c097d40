/**
 * Mapping files (`<workspace>/<mappingsFolder>/*.json`) for the Mappings tree. Each file is
 * validated with the engine's loader; an invalid file is a row with its error, not a popup.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseMappingText } from '../sync/mapping/loadMapping';
import type { Mapping } from '../sync/mapping/mappingSchema';
import { errorText } from './SourcesModel';

export type MappingNode =
  | { kind: 'mapping'; file: string; mapping: Mapping }
  | { kind: 'invalid'; file: string; error: string }
  | { kind: 'message'; severity: 'info' | 'error'; label: string; id: string };

/** "delta: orders → neon:public.orders" */
export function mappingSummary(m: Mapping): string {
  const src = m.source.type === 'delta' ? path.basename(m.source.path) : m.source.table;
  return `${src} → ${m.target.connection}:${m.target.schema}.${m.target.table}`;
}

export class MappingsModel {
  constructor(
    private readonly workspaceFolders: () => string[],
    private readonly mappingsFolder: () => string,
  ) {}

  /** The folders mapping files live in, one per workspace folder. */
  folders(): string[] {
    return this.workspaceFolders().map((w) => path.resolve(w, this.mappingsFolder()));
  }

  async children(): Promise<MappingNode[]> {
    const out: MappingNode[] = [];
    for (const dir of this.folders()) {
      let names: string[];
      try {
        names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // no mappings yet
        out.push({ kind: 'message', severity: 'error', id: `unreadable:${dir}`, label: `Cannot read ${dir}: ${errorText(e)}` });
        continue;
      }
      for (const name of names) out.push(await this.load(path.join(dir, name)));
    }
    // Empty: no rows, so the view's welcome content (Create Mapping) shows.
    return out;
  }

  async load(file: string): Promise<MappingNode> {
    try {
      const text = await fs.readFile(file, 'utf8');
      return { kind: 'mapping', file, mapping: parseMappingText(text, file) };
    } catch (e) {
      return { kind: 'invalid', file, error: errorText(e) };
    }
  }
}
