// Lint: the engine (src/sync) must stay free of `vscode` so the CLI and tests can use it.
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
    files: ['src/sync/**/*.ts', 'src/cli.ts', 'src/cli/**/*.ts', 'src/fixtures/**/*.ts', 'src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'The engine and CLI must not depend on VS Code.' }] }],
    },
  },
);
