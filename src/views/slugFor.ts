/**
 * A mapping name (and default target table name) from a table folder name: a slug that
 * passes the mapping schema's name rule and the Postgres identifier rule.
 */
export function slugFor(folderName: string): string {
  const s = folderName.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60);
  return /^[a-z]/.test(s) ? s : `t_${s || 'table'}`;
}
