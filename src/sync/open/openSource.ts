import { DeltaChangeSource } from '../sources/DeltaChangeSource';
import { DatabricksChangeSource } from '../sources/DatabricksChangeSource';
import { resolveDatabricksConnection } from '../databricks/resolveDatabricksConnection';
import type { DatabricksResolveOptions } from '../databricks/resolveDatabricksConnection';
import type { MappingSource } from '../mapping/mappingSchema';
import type { ChangeSource } from '../ports/ChangeSource';
import type { Logger } from '../ports/Logger';

export interface SourceOpenOptions {
  /** How `source.connection` of a Databricks source is resolved (env, SecretStorage lookup). */
  databricks?: DatabricksResolveOptions;
  logger?: Logger;
  /**
   * A Databricks source does not connect until its first read (DatabricksChangeSource.deferred):
   * for a status read, which asks the warehouse's state first and opens no session, so
   * starts no stopped warehouse, unless it reads the source.
   */
  deferConnect?: boolean;
}

/**
 * Opens the ChangeSource a mapping names. A Databricks source holds a warehouse
 * connection: call its `close()` (DatabricksChangeSource) when done.
 */
export async function openSource(source: MappingSource, opts: SourceOpenOptions = {}): Promise<ChangeSource> {
  switch (source.type) {
    case 'delta':
      return DeltaChangeSource.open(source.path);
    case 'databricks': {
      const config = await resolveDatabricksConnection(source.connection, opts.databricks);
      if (opts.deferConnect) return DatabricksChangeSource.deferred(config, source.table, undefined, { logger: opts.logger });
      return DatabricksChangeSource.open(config, source.table, { logger: opts.logger });
    }
  }
}
