/**
 * The parts of Create Mapping that decide rather than ask (no vscode): which columns can be
 * keys, how a source is described in the pick, and the key step that re-asks until a key
 * is chosen, keeping every other answer of the flow.
 */
import type { DeltaField, TableDescription } from '../sync/delta/types';
import { deltaTypeLabel } from './deltaTypeLabel';
import { tableSummary } from './SourcesModel';

/** A key column must be a scalar: a struct, array or map cannot be a Postgres primary key column as mapped. */
export function isScalarField(f: DeltaField): boolean {
  return f.type.kind === 'primitive' || f.type.kind === 'decimal';
}

/** Guesses the key among scalar columns: id, else the first *_id. */
export function guessScalarKey(fields: readonly DeltaField[]): string | undefined {
  const scalar = fields.filter(isScalarField);
  return scalar.find((f) => f.name === 'id')?.name ?? scalar.find((f) => /_id$/i.test(f.name))?.name;
}

/** The source pick's description: version, CDF state and rows, or why the table cannot be read. */
export function sourcePickDescription(d: TableDescription | null, error: string | null): string {
  if (error !== null) return `cannot read: ${error}`;
  if (d === null) return '';
  return tableSummary(d);
}

export interface KeyPickItem {
  label: string;
  description: string;
  picked: boolean;
}

/** A multi-select quick pick: resolves to the chosen items, or undefined when cancelled. */
export type PickMany = (items: KeyPickItem[], o: { title: string; placeHolder: string }) => PromiseLike<KeyPickItem[] | undefined>;

/**
 * The key step: only scalar columns are offered (the others are named in the placeholder);
 * an empty choice re-asks this step only (with the guess preselected again), never ends the flow.
 */
export async function askKeyColumns(pickMany: PickMany, fields: readonly DeltaField[], title: string): Promise<string[] | undefined> {
  const scalar = fields.filter(isScalarField);
  const skipped = fields.filter((f) => !isScalarField(f)).map((f) => f.name);
  const guess = guessScalarKey(fields);
  const base = 'The columns that identify a row (the primary key)';
  const notOffered = skipped.length ? `; not offered (struct, array or map): ${skipped.join(', ')}` : '';
  let placeHolder = `${base}${notOffered}`;
  for (;;) {
    const picked = await pickMany(
      scalar.map((f) => ({ label: f.name, description: deltaTypeLabel(f.type) + (f.nullable ? '' : ' · not null'), picked: f.name === guess })),
      { title, placeHolder },
    );
    if (!picked) return undefined;
    if (picked.length > 0) return picked.map((k) => k.label);
    placeHolder = `Pick at least one key column: a mapping needs a key${notOffered}`;
  }
}
