import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireSharedTable, sharedTable } from '../helpers/sharedTables';

/**
 * The built CLI (`node dist/cli.js delta ...`) on the shared Delta tables: exact jsonl for a
 * few known rows, `describe` output, and exit code 1 with a message on stderr for errors.
 */

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function jsonl(stdout: string): Record<string, unknown>[] {
  assert.ok(stdout.endsWith('\n') || stdout === '', 'output ends with a newline');
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Logical column names of the table's latest metaData, read straight from the JSON log. */
function logColumns(tablePath: string): string[] {
  const logDir = path.join(tablePath, '_delta_log');
  const commits = fs.readdirSync(logDir).filter((f) => /^\d{20}\.json$/.test(f)).sort();
  let schemaString: string | undefined;
  for (const c of commits) {
    for (const line of fs.readFileSync(path.join(logDir, c), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const action = JSON.parse(line) as { metaData?: { schemaString: string } };
      if (action.metaData) schemaString = action.metaData.schemaString;
    }
  }
  assert.ok(schemaString, 'metaData in the log');
  return (JSON.parse(schemaString) as { fields: { name: string }[] }).fields.map((f) => f.name);
}

describe('CLI: delta snapshot / cdf / describe', function () {
  this.timeout(120_000);

  before(function () {
    if (!sharedTable('delta-rs/cdf-table')) this.skip();
    const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
    if (built < newestSourceMtime(path.join(ROOT, 'src'))) {
      execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'pipe' });
    }
  });

  describe('delta cdf', function () {
    it('prints the cdf-table feed as jsonl with schema-ordered keys, dates and ISO commit timestamps', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const r = cli('delta', 'cdf', table, '--starting-version', '0', '--format', 'jsonl');
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      const rows = jsonl(r.stdout);
      assert.equal(rows.length, 23); // expected/cdf-table.cdf.from-v0.txt has 23 rows
      const keys = [...logColumns(table), '_change_type', '_commit_version', '_commit_timestamp'];
      for (const row of rows) assert.deepEqual(Object.keys(row), keys);
      // From the delta-rs expected file: | 1 | Steve | 2023-12-22 | insert | 0 | 2023-12-22T17:10:18.828 |
      assert.deepEqual(
        rows.filter((x) => x.name === 'Steve'),
        [{ id: 1, name: 'Steve', birthday: '2023-12-22', _change_type: 'insert', _commit_version: 0, _commit_timestamp: '2023-12-22T17:10:18.828Z' }],
      );
      // | 7 | Dennis | 2023-12-29 | delete | 3 | 2024-01-06T16:44:59.570 |
      assert.deepEqual(
        rows.filter((x) => x._change_type === 'delete'),
        [{ id: 7, name: 'Dennis', birthday: '2023-12-29', _change_type: 'delete', _commit_version: 3, _commit_timestamp: '2024-01-06T16:44:59.570Z' }],
      );
    });

    it('stops at --ending-timestamp and accepts a timestamp without zone as UTC', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const withZ = cli('delta', 'cdf', table, '--starting-version', '0', '--ending-timestamp', '2023-12-22T17:10:21.675Z');
      const noZone = cli('delta', 'cdf', table, '--starting-version', '0', '--ending-timestamp', '2023-12-22T17:10:21.675');
      assert.equal(withZ.code, 0, withZ.stderr);
      assert.equal(jsonl(withZ.stdout).length, 16); // expected/cdf-table.cdf.from-v0.to-ts-2023-12-22T17-10-21.675.txt
      assert.deepEqual(new Set(jsonl(withZ.stdout).map((x) => x._commit_version)), new Set([0, 1]));
      assert.equal(noZone.stdout, withZ.stdout);
    });

    it('writes a long beyond 2^53 as a string and smaller ones as numbers (cdf-table-non-partitioned)', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table-non-partitioned');
      const r = cli('delta', 'cdf', table, '--starting-version', '0', '--ending-version', '0');
      assert.equal(r.code, 0, r.stderr);
      // | 10 | Borb | 2024-04-17 | 99999999999999999 | true | 3.14 | 1 | insert | 0 | 2024-04-14T15:58:26.249 |
      const borb = r.stdout.split('\n').find((l) => l.includes('"Borb"'));
      assert.equal(
        borb,
        '{"id":10,"name":"Borb","birthday":"2024-04-17","long_field":"99999999999999999","boolean_field":true,' +
          '"double_field":3.14,"smallint_field":1,"_change_type":"insert","_commit_version":0,' +
          '"_commit_timestamp":"2024-04-14T15:58:26.249Z"}',
      );
      const steve = jsonl(r.stdout).find((x) => x.name === 'Steve');
      assert.equal(steve?.long_field, 1);
    });

    it('exits 1 with the reason on stderr when the table has no Change Data Feed', function () {
      const table = requireSharedTable(this, 'delta-rs/simple_table');
      const r = cli('delta', 'cdf', table, '--starting-version', '0');
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /change data feed/i);
      assert.ok(r.stderr.includes('simple_table'), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without DEBUG');
    });

    it('exits 1 with a usage line when no starting version or timestamp is given', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const r = cli('delta', 'cdf', table);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--starting-version/);
      assert.match(r.stderr, /Usage: delta-neon-sync delta cdf <table-path>/);
    });
  });

  describe('delta snapshot', function () {
    it('prints the rows of a version as jsonl (cdf-table v0: the ten inserted rows)', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const r = cli('delta', 'snapshot', table, '--version', '0', '--format', 'jsonl');
      assert.equal(r.code, 0, r.stderr);
      const rows = jsonl(r.stdout);
      assert.equal(rows.length, 10);
      for (const row of rows) assert.deepEqual(Object.keys(row), logColumns(table));
      assert.deepEqual(rows.find((x) => x.id === 1), { id: 1, name: 'Steve', birthday: '2023-12-22' });
    });

    it('reads the version current at --timestamp', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      // v1 committed 2023-12-22T17:10:21.675Z, v2 on 2023-12-29: a time between reads v1.
      const byTime = cli('delta', 'snapshot', table, '--timestamp', '2023-12-25T00:00:00Z');
      const byVersion = cli('delta', 'snapshot', table, '--version', '1');
      assert.equal(byTime.code, 0, byTime.stderr);
      assert.deepEqual(jsonl(byTime.stdout).map((x) => JSON.stringify(x)).sort(), jsonl(byVersion.stdout).map((x) => JSON.stringify(x)).sort());
    });

    it('streams with a small batch size and stays quiet when the reader closes the pipe (| head -n 1)', function () {
      const table = requireSharedTable(this, 'delta-kernel-rs/parquet-all-types');
      const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" delta snapshot "${table}" --batch-size 1 | head -n 1; echo "exit=\${PIPESTATUS[0]}" >&2`], {
        encoding: 'utf8',
      });
      assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
      assert.equal(r.stderr.trim(), 'exit=0');
    });

    it('exits 1 naming the version when it is beyond the table history', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const r = cli('delta', 'snapshot', table, '--version', '99');
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /99/);
    });

    it('exits 1 for a path that is not a Delta table', function () {
      const r = cli('delta', 'snapshot', path.join(ROOT, 'no-such-table'));
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /no-such-table/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });

    for (const [what, args, message] of [
      ['an unknown flag', ['--bogus'], /bogus/],
      ['both --version and --timestamp', ['--version', '1', '--timestamp', '2024-01-01T00:00:00Z'], /--version and --timestamp/],
      ['a negative version', ['--version', '-1'], /version/],
      ['an unsupported format', ['--format', 'csv'], /--format/],
    ] as const) {
      it(`exits 1 with a usage line for ${what}`, function () {
        const table = requireSharedTable(this, 'delta-rs/cdf-table');
        const r = cli('delta', 'snapshot', table, ...args);
        assert.equal(r.code, 1);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /Usage: delta-neon-sync delta snapshot <table-path>/);
      });
    }

    it('exits 1 with a usage line when the table path is missing', function () {
      const r = cli('delta', 'snapshot');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /missing <table-path>/);
      assert.match(r.stderr, /Usage: delta-neon-sync delta snapshot/);
    });
  });

  describe('delta describe', function () {
    it('shows version, protocol, partitioning, CDF, files and rows in text', function () {
      const table = requireSharedTable(this, 'delta-rs/cdf-table');
      const r = cli('delta', 'describe', table);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Version:\s+3 /m);
      assert.match(r.stdout, /^Protocol:\s+reader 1, writer 4$/m);
      assert.match(r.stdout, /^Partition columns:\s+birthday$/m);
      assert.match(r.stdout, /^Change Data Feed:\s+enabled$/m);
      assert.match(r.stdout, /^Rows:\s+9$/m); // 10 inserted, 1 deleted (expected CDF)
      for (const column of logColumns(table)) assert.match(r.stdout, new RegExp(`^  ${column}\\s`, 'm'));
    });

    it('prints one JSON object with --format json, its row count matching the snapshot', function () {
      const table = requireSharedTable(this, 'delta-kernel-rs/dv-partitioned-with-checkpoint');
      const r = cli('delta', 'describe', table, '--format', 'json');
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(d.version, 15);
      assert.deepEqual(d.protocol, { minReaderVersion: 3, minWriterVersion: 7 });
      assert.deepEqual(d.readerFeatures, ['deletionVectors']);
      assert.deepEqual(d.partitionColumns, ['part']);
      assert.equal(d.cdfEnabled, false);
      assert.deepEqual((d.schema as { name: string }[]).map((f) => f.name), logColumns(table));
      const rows = jsonl(cli('delta', 'snapshot', table).stdout);
      assert.equal(d.numRows, rows.length);
      assert.equal(typeof d.numFiles, 'number');
    });

    it('prints help with --help and exits 0', function () {
      for (const sub of ['snapshot', 'cdf', 'describe']) {
        const r = cli('delta', sub, '--help');
        assert.equal(r.code, 0);
        assert.match(r.stdout, new RegExp(`^Usage: delta-neon-sync delta ${sub} <table-path>`));
      }
      const group = cli('delta', '--help');
      assert.equal(group.code, 0);
      assert.match(group.stdout, /snapshot[\s\S]*cdf[\s\S]*describe/);
    });
  });
});
