import assert from 'node:assert/strict';
import { renderSummary, scaleTargets } from '../../bench/scaleSummary';
import type { DatabricksOutcome, RunFigures, ScaleRun, SizeFigures } from '../../bench/scaleSummary';

/**
 * The summary of bench/scaleBench.ts: issue 16's targets judged at the largest size (the
 * engine's peak RSS being the default configuration's process, not a parallel load's), the
 * time ratio against the smallest, and every figure in the markdown with the date, the
 * machine and the load averages.
 */
const MB = 2 ** 20;

function run(ms: number, o: Partial<RunFigures> = {}): RunFigures {
  return { ms, phases: [{ phase: 'stage', ms: ms * 0.7 }, { phase: 'index', ms: ms * 0.15 }, { phase: 'swap', ms: ms * 0.15 }], cpuMs: ms / 10, sampledPeakRss: 240 * MB, processMaxRss: 250 * MB, ...o };
}

function size(rows: number, o: Partial<SizeFigures> = {}): SizeFigures {
  return {
    rows,
    changes: rows / 10,
    copyMs: 10 * rows / 1000,
    initial: run(4 * rows / 1000),
    incremental: run(1 * rows / 1000),
    parallel: [],
    wallMs: 60_000,
    generateMs: 0,
    loadAvgStart: [1.5, 1.2, 1.0],
    loadAvgEnd: [1.7, 1.3, 1.1],
    ...o,
  };
}

function scaleRun(sizes: SizeFigures[], databricks: DatabricksOutcome = { status: 'skipped' }): ScaleRun {
  return {
    startedAt: new Date('2026-12-07T14:30:00Z'),
    endedAt: new Date('2026-12-07T16:05:00Z'),
    command: 'npx tsx bench/scaleBench.ts',
    machine: { cores: 2, cpuModel: 'Test CPU', memBytes: 8 * 2 ** 30, postgres: 'PostgreSQL 15.8', postgresSettings: 'shared_buffers 128MB, fsync on', node: 'v20.0.0' },
    loadAvgStart: [1.81, 1.6, 1.52],
    loadAvgEnd: [2.05, 1.9, 1.7],
    wallMs: 95 * 60_000,
    sizes,
    databricks,
  };
}

const verdicts = (r: ScaleRun): Record<string, boolean> => Object.fromEntries(scaleTargets(r).map((c) => [c.target, c.met]));

describe('scaleBench summary (issue 16 targets)', () => {
  it('judges the targets at the largest size, whatever order the sizes ran in', () => {
    // 10M: \copy 100 s, initial 46 s (2.17x), incremental 1M changes in 15 s (0.67x), 323 MB.
    const large = size(10_000_000, { initial: run(46_000), incremental: run(15_000, { processMaxRss: 323 * MB }) });
    const small = size(1_000_000, { initial: run(4_500), incremental: run(1_500) });
    const v = verdicts(scaleRun([large, small]));
    assert.deepEqual(v, {
      'initial load >= 2x `\\copy` at 10,000,000 rows': true,
      'incremental >= 0.75x `\\copy` at 10,000,000 rows': false,
      'engine peak RSS <= 300 MB at 10,000,000 rows': false,
      'initial load time at 10,000,000 rows <= 10.5x the 1,000,000-row time': true,
      'incremental time at 10,000,000 rows <= 10.5x the 1,000,000-row time': true,
    });
  });

  it('counts the default configuration against the RSS budget, not a parallel load in its own process', () => {
    const large = size(10_000_000, { parallel: [{ streams: 4, ...run(30_000, { processMaxRss: 391 * MB }) }] });
    const check = scaleTargets(scaleRun([size(1_000_000), large])).find((c) => c.target.startsWith('engine peak RSS'));
    assert.equal(check?.met, true);
    assert.equal(check?.measured, '250 MB (initial load 250 MB, then the incremental)');
  });

  it('misses the time target above 1.05x the rows factor, for the initial load or the incremental alone', () => {
    const small = size(1_000_000, { initial: run(4_000), incremental: run(1_000) });
    const over = verdicts(scaleRun([small, size(10_000_000, { initial: run(42_100), incremental: run(10_000) })]));
    assert.equal(over['initial load time at 10,000,000 rows <= 10.5x the 1,000,000-row time'], false, '10.53x');
    assert.equal(over['incremental time at 10,000,000 rows <= 10.5x the 1,000,000-row time'], true, '10.0x');
    const under = verdicts(scaleRun([small, size(10_000_000, { initial: run(41_900), incremental: run(10_600) })]));
    assert.equal(under['initial load time at 10,000,000 rows <= 10.5x the 1,000,000-row time'], true, '10.48x');
    assert.equal(under['incremental time at 10,000,000 rows <= 10.5x the 1,000,000-row time'], false, '10.6x');
  });

  it('with one size checks no time ratio', () => {
    const checks = scaleTargets(scaleRun([size(20_000)]));
    assert.deepEqual(checks.map((c) => c.target), ['initial load >= 2x `\\copy` at 20,000 rows', 'incremental >= 0.75x `\\copy` at 20,000 rows', 'engine peak RSS <= 300 MB at 20,000 rows']);
    assert.match(renderSummary(scaleRun([size(20_000)])), /One size only: the time ratio is not checked/);
  });

  it('renders the date, machine, load averages, wall time, every figure and the verdicts', () => {
    const large = size(10_000_000, {
      copyMs: 240_000,
      initial: run(112_000),
      incremental: run(36_000, { processMaxRss: 323 * MB }),
      parallel: [{ streams: 2, ...run(90_000, { processMaxRss: 330 * MB }) }],
      wallMs: 80 * 60_000,
      generateMs: 15 * 60_000,
    });
    const text = renderSummary(
      scaleRun([size(1_000_000), large], {
        status: 'measured',
        wallMs: 5 * 60_000,
        figures: { rows: 1_000_000, lz4: 'requested', filesLz4: true, files: 20, fileBytes: 60 * MB, readRowsPerSec: 150_000, syncRowsPerSec: 60_000, syncMainThreadRowsPerSec: 50_000, localSyncRowsPerSec: 80_000, maxRss: 280 * MB, loadAverageBefore: [1, 1, 1], loadAverageAfter: [2, 2, 2] },
      }),
    );
    for (const want of [
      'scaleBench run of 2026-12-07 14:30 UTC',
      '2 cores (Test CPU)',
      'PostgreSQL 15.8 (shared_buffers 128MB, fsync on)',
      '1.81 1.60 1.52 at the start, 2.05 1.90 1.70 at the end (2026-12-07 16:05 UTC)',
      'Wall time of the whole run: 1 h 35 min (Databricks 5 min 0 s; 1,000,000 rows 1 min 0 s; 10,000,000 rows 1 h 20 min (of which generating the source table 15 min 0 s))',
      // 10M: \copy 240 s / initial 112 s = 2.14x; 1M changes in 36 s against 10M rows in 240 s = 0.67x.
      '| 10,000,000 | 240.0 s | 112.0 s (stage 78.4, index 16.8, swap 16.8) | 2.14x | 11.2 s | 240 MB / 250 MB | 36.0 s (1,000,000) | 0.67x | 3.6 s | 240 MB / 323 MB |',
      '| 10,000,000 | 2 | 90.0 s (stage 63.0, index 13.5, swap 13.5) | 1.24x | 1.24x | 2.67x | 9.0 s | 330 MB | yes |',
      '| read alone (download, LZ4, Arrow decode to engine values; nothing written) | 150,000 | 1.88x |',
      '20 CloudFetch files, 60.0 MiB (LZ4 where the driver asks for it: served compressed)',
      '| initial load from Databricks, read on the worker thread (default) | 60,000 | 0.75x |',
      '| initial load from Databricks, read on the calling thread | 50,000 | 0.63x |',
      'Worker thread over calling thread: 1.20x.',
      '| initial load >= 2x `\\copy` at 10,000,000 rows | 2.14x | met |',
      '| incremental >= 0.75x `\\copy` at 10,000,000 rows | 0.67x | **MISSED** |',
      '| engine peak RSS <= 300 MB at 10,000,000 rows | 323 MB (initial load 250 MB, then the incremental) | **MISSED** |',
    ]) {
      assert.ok(text.includes(want), `summary lacks: ${want}\n---\n${text}`);
    }
  });

  it('says so when the Databricks path was skipped or failed', () => {
    assert.match(renderSummary(scaleRun([size(20_000)])), /Not measured in this run \(`--no-databricks`\)/);
    const failed = renderSummary(scaleRun([size(20_000)], { status: 'failed', error: 'bench/databricksBench.ts exited 1 (its output is above)', wallMs: 1000 }));
    assert.match(failed, /FAILED: bench\/databricksBench.ts exited 1/);
    assert.match(renderSummary(scaleRun([size(20_000)])), /Not measured in this run \(`--streams 1`\)/);
  });
});
