/**
 * The summary of one bench/scaleBench.ts run (issue 16, points 1-3): every figure and each
 * target met or missed, as markdown, printed at the end of the run and written to a file
 * that the README's performance section takes as it is. Figures in, text out: nothing here
 * measures (test/unit/scaleSummary.test.ts checks the verdicts).
 */
import type { DatabricksBenchFigures } from './databricksBench';

/** Issue 16's targets for the largest size. */
export const TARGETS = {
  /** The initial load's rows/s at least this many times `\copy`'s. */
  initialVsCopy: 2,
  /** The incremental's changes/s at least this many times `\copy`'s rows/s. */
  incrementalVsCopy: 0.75,
  /** The engine process's peak RSS (bytes). */
  peakRss: 300 * 2 ** 20,
  /** Time may grow by the rows' factor times this: 10.5x for 10M rows against 1M. */
  linearSlack: 1.05,
} as const;

export interface PhaseTime {
  phase: string;
  ms: number;
}

/** One engine run (an initial load or an incremental sync). */
export interface RunFigures {
  ms: number;
  /** Its phases in order, each with its duration. */
  phases: PhaseTime[];
  /** CPU time of the engine's process during the run (all threads). */
  cpuMs: number;
  /** The highest RSS sampled (every 100 ms) during this run. */
  sampledPeakRss: number;
  /** The engine process's peak RSS (kernel maxRSS) at the end of this run: every run of that process so far. */
  processMaxRss: number;
}

export interface ParallelLoad extends RunFigures {
  /** initialLoad.copyStreams (> 1). Each such load runs in an engine process of its own. */
  streams: number;
}

/** What one size measured. */
export interface SizeFigures {
  rows: number;
  changes: number;
  copyMs: number;
  /** The initial load with one COPY stream (the default). */
  initial: RunFigures;
  /** The incremental sync, in the same engine process, after the initial load. */
  incremental: RunFigures;
  parallel: ParallelLoad[];
  /** This size's share of the run's wall time, and of it the source table's generation (0 when cached). */
  wallMs: number;
  generateMs: number;
  loadAvgStart: number[];
  loadAvgEnd: number[];
}

/**
 * bench/databricksBench.ts's figures as the summary reads them back from its JSON: the
 * fields added later (filesLz4, maxRss) may be absent from figures written before them.
 */
export type DatabricksFigures = Omit<DatabricksBenchFigures, 'lz4' | 'filesLz4' | 'maxRss' | 'date'> & {
  lz4: string;
  filesLz4?: boolean;
  maxRss?: number;
};

export type DatabricksOutcome =
  | { status: 'measured'; figures: DatabricksFigures; wallMs: number }
  | { status: 'skipped' }
  | { status: 'failed'; error: string; wallMs: number };

export interface Machine {
  cores: number;
  cpuModel: string;
  memBytes: number;
  postgres: string;
  /** The throwaway server's settings that bear on the figures, e.g. "shared_buffers 128MB, fsync on". */
  postgresSettings: string;
  node: string;
}

export interface ScaleRun {
  startedAt: Date;
  endedAt: Date;
  command: string;
  machine: Machine;
  loadAvgStart: number[];
  loadAvgEnd: number[];
  wallMs: number;
  sizes: SizeFigures[];
  databricks: DatabricksOutcome;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

const MB = 2 ** 20;
export const rowsPerSec = (rows: number, ms: number): number => (rows / ms) * 1000;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (b: number): string => `${Math.round(b / MB)} MB`;
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const x = (r: number): string => `${r.toFixed(2)}x`;
const loads = (l: readonly number[]): string => l.map((v) => v.toFixed(2)).join(' ');

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The initial load's rows/s over `\copy`'s. */
export const initialVsCopy = (s: SizeFigures): number => s.copyMs / s.initial.ms;
/** The incremental's changes/s over `\copy`'s rows/s (pgBench's ratio). */
export const incrementalVsCopy = (s: SizeFigures): number => rowsPerSec(s.changes, s.incremental.ms) / rowsPerSec(s.rows, s.copyMs);

/** The sizes sorted by rows: the targets are checked at the largest, linearity against the smallest. */
function bySize(run: ScaleRun): SizeFigures[] {
  return [...run.sizes].sort((a, b) => a.rows - b.rows);
}

/**
 * Issue 16 point 1's targets, at the largest size measured: initial >= 2x `\copy`,
 * incremental >= 0.75x, the engine's peak RSS (its process's, over the initial load and the
 * incremental) <= 300 MB, and, with two sizes or more, the initial load's and the
 * incremental's time each at most 1.05x the rows' factor times the smallest size's.
 */
export function scaleTargets(run: ScaleRun): TargetCheck[] {
  const sizes = bySize(run);
  const large = sizes.at(-1);
  if (!large) return [];
  const at = `at ${fmt(large.rows)} rows`;
  const checks: TargetCheck[] = [
    { target: `initial load >= ${TARGETS.initialVsCopy}x \`\\copy\` ${at}`, measured: x(initialVsCopy(large)), met: initialVsCopy(large) >= TARGETS.initialVsCopy },
    { target: `incremental >= ${TARGETS.incrementalVsCopy}x \`\\copy\` ${at}`, measured: x(incrementalVsCopy(large)), met: incrementalVsCopy(large) >= TARGETS.incrementalVsCopy },
    {
      target: `engine peak RSS <= ${mb(TARGETS.peakRss)} ${at}`,
      measured: `${mb(large.incremental.processMaxRss)} (initial load ${mb(large.initial.processMaxRss)}, then the incremental)`,
      met: large.incremental.processMaxRss <= TARGETS.peakRss,
    },
  ];
  const small = sizes[0] as SizeFigures;
  if (small !== large) {
    const k = large.rows / small.rows;
    const limit = TARGETS.linearSlack * k;
    const vs = `the ${fmt(small.rows)}-row time`;
    const i = large.initial.ms / small.initial.ms;
    const n = large.incremental.ms / small.incremental.ms;
    checks.push(
      { target: `initial load time ${at} <= ${limit.toFixed(1)}x ${vs}`, measured: x(i), met: i <= limit },
      { target: `incremental time ${at} <= ${limit.toFixed(1)}x ${vs}`, measured: x(n), met: n <= limit },
    );
  }
  return checks;
}

function phaseText(r: RunFigures): string {
  const named = ['stage', 'index', 'swap'].map((p) => r.phases.find((q) => q.phase === p)).filter((p): p is PhaseTime => p !== undefined);
  return named.length === 0 ? '' : ` (${named.map((p) => `${p.phase} ${(p.ms / 1000).toFixed(1)}`).join(', ')})`;
}

function lz4Text(f: DatabricksFigures): string {
  const how = f.lz4 === 'always' ? 'LZ4 on every file' : 'LZ4 where the driver asks for it';
  return f.filesLz4 === undefined ? ` (${how})` : ` (${how}: ${f.filesLz4 ? 'served compressed' : 'served uncompressed'})`;
}

const stageMs = (r: RunFigures): number | undefined => r.phases.find((p) => p.phase === 'stage')?.ms;

/** The run as markdown: header (date, machine, load averages, wall time), then points 1, 3 and 2, then the targets. */
export function renderSummary(run: ScaleRun): string {
  const out: string[] = [];
  const m = run.machine;
  const sizes = bySize(run);
  out.push(`#### scaleBench run of ${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, '');
  out.push(
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${(m.memBytes / 2 ** 30).toFixed(1)} GiB RAM; ${m.postgres} (${m.postgresSettings}); Node ${m.node}.`,
    `- Load average (1, 5, 15 min): ${loads(run.loadAvgStart)} at the start, ${loads(run.loadAvgEnd)} at the end (${run.endedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC).`,
  );
  const parts = [
    ...(run.databricks.status === 'skipped' ? [] : [`Databricks ${duration(run.databricks.wallMs)}`]),
    ...run.sizes.map((s) => `${fmt(s.rows)} rows ${duration(s.wallMs)}${s.generateMs >= 1000 ? ` (of which generating the source table ${duration(s.generateMs)})` : ''}`),
  ];
  out.push(`- Wall time of the whole run: ${duration(run.wallMs)} (${parts.join('; ')}).`, `- Command: \`${run.command}\``, '');

  out.push(
    '**Point 1: initial load and incremental against `psql \\copy` of the same rows** (ratios: rows/s of the engine over rows/s of `\\copy`; the incremental\'s rows are its changes; one run each; engine peak RSS: sampled during that run / its process\'s maximum so far)',
    '',
    '| rows | `\\copy` | initial load, 1 stream (stage, index, swap) | vs `\\copy` | engine CPU | engine peak RSS | incremental (changes) | vs `\\copy` | engine CPU | engine peak RSS | load average at start / end |',
    '|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|',
  );
  for (const s of sizes) {
    out.push(
      `| ${fmt(s.rows)} | ${sec(s.copyMs)} | ${sec(s.initial.ms)}${phaseText(s.initial)} | ${x(initialVsCopy(s))} | ${sec(s.initial.cpuMs)} | ${mb(s.initial.sampledPeakRss)} / ${mb(s.initial.processMaxRss)} ` +
        `| ${sec(s.incremental.ms)} (${fmt(s.changes)}) | ${x(incrementalVsCopy(s))} | ${sec(s.incremental.cpuMs)} | ${mb(s.incremental.sampledPeakRss)} / ${mb(s.incremental.processMaxRss)} | ${loads(s.loadAvgStart)} / ${loads(s.loadAvgEnd)} |`,
    );
  }
  if (sizes.length >= 2) {
    const small = sizes[0] as SizeFigures;
    const large = sizes.at(-1) as SizeFigures;
    out.push(
      '',
      `${fmt(large.rows)} / ${fmt(small.rows)} rows (x${fmt(large.rows / small.rows)}), time: \`\\copy\` ${x(large.copyMs / small.copyMs)}, initial load ${x(large.initial.ms / small.initial.ms)}, incremental ${x(large.incremental.ms / small.incremental.ms)}.`,
    );
  }

  const withParallel = sizes.filter((s) => s.parallel.length > 0);
  out.push('', '**Point 3: the initial load with N parallel COPY streams** (each N > 1 in an engine process of its own; "vs 1 stream" is the 1-stream time over this one\'s)', '');
  if (withParallel.length === 0) out.push('Not measured in this run (`--streams 1`).');
  else {
    out.push('| rows | COPY streams | time (stage, index, swap) | vs 1 stream | stage vs 1 stream | vs `\\copy` | engine CPU | engine peak RSS | faster than 1 stream |', '|---:|---:|---|---:|---:|---:|---:|---:|---|');
    for (const s of withParallel) {
      const stage1 = stageMs(s.initial);
      for (const p of [{ ...s.initial, streams: 1 }, ...s.parallel]) {
        const st = stageMs(p);
        const stageRatio = stage1 !== undefined && st ? x(stage1 / st) : '';
        out.push(
          `| ${fmt(s.rows)} | ${p.streams} | ${sec(p.ms)}${phaseText(p)} | ${x(s.initial.ms / p.ms)} | ${stageRatio} | ${x(s.copyMs / p.ms)} | ${sec(p.cpuMs)} | ${mb(p.processMaxRss)} ` +
            `| ${p.streams === 1 ? '' : p.ms < s.initial.ms ? 'yes' : 'no'} |`,
        );
      }
    }
  }

  const d = run.databricks;
  out.push('', '**Point 2: the Databricks path** (the real `@databricks/sql` driver against the local warehouse: CloudFetch links over HTTPS, Arrow; one run each)', '');
  if (d.status === 'skipped') out.push('Not measured in this run (`--no-databricks`).');
  else if (d.status === 'failed') out.push(`FAILED: ${d.error}`);
  else {
    const f = d.figures;
    const local = f.localSyncRowsPerSec;
    out.push(
      `${fmt(f.rows)} rows of the ledger table (64-bit integers, DECIMAL(38,6), timestamps, nulls): ${f.files} CloudFetch file${f.files === 1 ? '' : 's'}, ${(f.fileBytes / MB).toFixed(1)} MiB${lz4Text(f)}; ` +
        `load average ${loads(f.loadAverageBefore)} before, ${loads(f.loadAverageAfter)} after${f.maxRss === undefined ? '' : `; peak RSS of the reading process ${mb(f.maxRss)}`}.`,
      '',
      '| | rows/s | vs the local-table sync |',
      '|---|---:|---:|',
      `| read alone (download, ${f.filesLz4 ? 'LZ4, ' : ''}Arrow decode to engine values; nothing written) | ${fmt(f.readRowsPerSec)} | ${x(f.readRowsPerSec / local)} |`,
      `| initial load from Databricks, read on the worker thread (default) | ${fmt(f.syncRowsPerSec)} | ${x(f.syncRowsPerSec / local)} |`,
      ...(f.syncMainThreadRowsPerSec === undefined ? [] : [`| initial load from Databricks, read on the calling thread | ${fmt(f.syncMainThreadRowsPerSec)} | ${x(f.syncMainThreadRowsPerSec / local)} |`]),
      `| initial load from the local Delta table (worker thread) | ${fmt(local)} | 1.00x |`,
    );
    if (f.syncMainThreadRowsPerSec !== undefined) out.push('', `Worker thread over calling thread: ${x(f.syncRowsPerSec / f.syncMainThreadRowsPerSec)}.`);
  }

  const checks = scaleTargets(run);
  out.push('', '**Targets (issue 16, point 1)**', '', '| target | measured | |', '|---|---|---|');
  for (const c of checks) out.push(`| ${c.target} | ${c.measured} | ${c.met ? 'met' : '**MISSED**'} |`);
  if (sizes.length < 2) out.push('', 'One size only: the time ratio is not checked (it needs two sizes, e.g. `--sizes 1000000,10000000`).');
  return out.join('\n') + '\n';
}
