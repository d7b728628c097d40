// Lint: the engine (src/sync) and the extension's engine wiring (src/engine) must stay free
// of `vscode` so the CLI and plain Node tests can use them; the protocol, shared with the
// webview build, takes nothing from the engine but types of its import-free port files.
import tseslint from 'typescript-eslint';

const noVscode = { name: 'vscode', message: 'The engine, its wiring and the CLI must not depend on VS Code.' };

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', 'bench/.data/**', '.cache/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // import() type annotations are how CommonJS code names types of ESM-only packages (hyparquet).
      '@typescript-eslint/consistent-type-imports': ['error', { disallowTypeAnnotations: false }],
    },
  },
  {
    files: ['src/sync/**/*.ts', 'src/engine/**/*.ts', 'src/cli.ts', 'src/cli/**/*.ts', 'src/fixtures/**/*.ts', 'src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [noVscode] }],
    },
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noVscode],
          patterns: [{ group: ['../sync/*', '!../sync/ports', '../sync/ports/*', '!../sync/ports/runLog', '!../sync/ports/pipelineState'], message: 'The webview build includes src/protocol: take only types from import-free port files.' }],
        },
      ],
    },
  },
);
