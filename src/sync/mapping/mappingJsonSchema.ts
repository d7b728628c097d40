import { z } from 'zod';
import { mappingSchema } from './mappingSchema';

/**
 * The JSON Schema of a mapping file as a user writes it (`io: 'input'`: fields with
 * defaults are optional), as committed in schemas/mapping.schema.json.
 */
export function mappingJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(mappingSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}

/** The exact text of schemas/mapping.schema.json (2-space JSON, trailing newline). */
export function mappingSchemaFileText(): string {
  return JSON.stringify(mappingJsonSchema(), null, 2) + '\n';
}
