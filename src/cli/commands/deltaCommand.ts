import type { CliCommand } from '../CliCommand';
import { deltaCdfCommand } from './deltaCdfCommand';
import { deltaDescribeCommand } from './deltaDescribeCommand';
import { deltaSnapshotCommand } from './deltaSnapshotCommand';

/** `delta`: read local Delta tables directly (no Postgres involved). */
export const deltaCommand: CliCommand = {
  name: 'delta',
  summary: 'Read a Delta table: snapshot rows, Change Data Feed, description',
  usage: '<command> [options]',
  subcommands: [deltaSnapshotCommand, deltaCdfCommand, deltaDescribeCommand],
};
