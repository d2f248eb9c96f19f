// @ts-check
// Type-aware lint (typescript-eslint): `npm run lint`. The recommended sets, minus the rules that
// would only force cosmetic edits here; each exception below says why.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** node:test's describe/it/test return promises the runner itself awaits. */
const nodeTest = {
  from: 'package',
  package: 'node:test',
  name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
};

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'bench/out/**', '.data/**', '.build/**'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      '@typescript-eslint/no-misused-promises': 'error',
      // A `default:` that folds the rest (e.g. BullMQ's finer states into 'waiting') is a decision;
      // without one, every member of the union must have its case.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // An async method without await is how a Promise-returning interface is implemented here
      // (throws become rejections).
      '@typescript-eslint/require-await': 'off',
      // Shapes (number[]) in error messages print as "2,3": readable enough.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowArray: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests and benches read JSON bodies as `any` and assert on them on the next line: the assertion
    // is the check, so typing every response would add noise, not safety.
    files: ['test/**', 'libs/*/test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.{js,mjs,cjs}'], extends: [tseslint.configs.disableTypeChecked] },
);
