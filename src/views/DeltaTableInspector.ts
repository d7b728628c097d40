import { DeltaTable } from '../sync/delta/DeltaTable';
import type { HistoryEntry } from '../sync/delta/DeltaTable';
import type { TableDescription } from '../sync/delta/types';
import type { TableInspector } from './SourcesModel';

/** The real `TableInspector`: the engine's reader, nothing cached here (the model caches). */
export class DeltaTableInspector implements TableInspector {
  async describe(tablePath: string): Promise<TableDescription> {
    const table = await DeltaTable.open(tablePath);
    return (await table.snapshot()).describe();
  }

  async history(tablePath: string): Promise<HistoryEntry[]> {
    return (await DeltaTable.open(tablePath)).history();
  }
}
