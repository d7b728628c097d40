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
      return DatabricksChangeSource.open(config, source.table, { logger: opts.logger });
    }
  }
}
