import type { TableAlteration, TableRef } from '../ports/targetTypes';
import { qualifiedRef, quoteIdent } from './quoteIdent';

/**
 * The DDL of one TableAlteration, the one renderer: the preview and the dry run show this
 * text and the apply transaction runs it, so what is shown is what runs. A retype converts
 * with an explicit cast (every change it is used for, a widening, has one that keeps values).
 */
export function alterTableSql(table: TableRef, a: TableAlteration): string {
  const t = `ALTER TABLE ${qualifiedRef(table)}`;
  const c = quoteIdent(a.column);
  switch (a.alter) {
    case 'add-column':
      return `${t} ADD COLUMN ${a.ifNotExists ? 'IF NOT EXISTS ' : ''}${c} ${a.pgType}`;
    case 'rename-column':
      return `${t} RENAME COLUMN ${c} TO ${quoteIdent(a.to)}`;
    case 'retype-column':
      return `${t} ALTER COLUMN ${c} TYPE ${a.pgType} USING ${c}::${a.pgType}`;
    case 'drop-not-null':
      return `${t} ALTER COLUMN ${c} DROP NOT NULL`;
    case 'drop-column':
      return `${t} DROP COLUMN ${c}`;
  }
}
