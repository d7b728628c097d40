import pg from 'pg';

/** Runs one statement on a connection of its own (the runs under test hold theirs). */
export async function queryOnce<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** The pipeline's checkpoint version, or undefined when it has none (or the state tables do not exist yet). */
export async function checkpointVersion(url: string, pipeline: string): Promise<number | undefined> {
  const rows = await queryOnce<{ v: string }>(url, `SELECT version::text AS v FROM delta_neon_sync.checkpoints WHERE pipeline = $1`, [pipeline]).catch(() => []);
  return rows[0] ? Number(rows[0].v) : undefined;
}
