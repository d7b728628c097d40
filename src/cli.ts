// CLI entry: bundled to dist/cli.js (with a shebang) by esbuild.mjs. Everything lives in src/cli/.
import { runProcess } from './cli/runProcess';

void runProcess();
