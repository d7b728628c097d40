/**
 * Writes schemas/mapping.schema.json from the zod mapping schema, so editors complete and
 * validate `.delta-sync/*.json`. Run: `npx tsx scripts/gen-mapping-schema.ts` (or with
 * `--check` to fail when the committed file is stale). test/unit/mapping.test.ts checks
 * the same, so the file never drifts from the code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mappingSchemaFileText } from '../src/sync/mapping/mappingJsonSchema';

const out = path.resolve(__dirname, '..', 'schemas', 'mapping.schema.json');
const text = mappingSchemaFileText();
if (process.argv.includes('--check')) {
  const current = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (current !== text) {
    console.error(`${out} is stale: run npx tsx scripts/gen-mapping-schema.ts`);
    process.exit(1);
  }
} else {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
