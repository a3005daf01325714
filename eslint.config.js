// Lint: the recommended JS and typescript-eslint rules, plus a few that catch real proxy bugs
// (floating promises crash-free paths, unused code).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      // Closures that read a variable assigned later (late wiring) are fine.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Case tables mutate deliberately malformed input; typing each mutation adds nothing.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js'],
    ignores: ['src/dashboard/browser/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The dashboard's script runs in the browser, as a classic script, never in Node.
    files: ['src/dashboard/browser/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
    rules: {
      // Data reaches the DOM as text only (see src/dashboard/page.ts).
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'use textContent' },
        { property: 'outerHTML', message: 'use textContent' },
        { property: 'insertAdjacentHTML', message: 'build nodes and set textContent' },
      ],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
    },
  },
);
