// Lint: the engine (src/sync) and the extension's engine wiring (src/engine) must stay free
// of `vscode` so the CLI and plain Node tests can use them.
import tseslint from 'typescript-eslint';

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
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'The engine, its wiring and the CLI must not depend on VS Code.' }] }],
    },
  },
);
