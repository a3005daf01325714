import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { describeJsonError, parseJsonFile } from '../../src/core/json-text.js';

describe('describeJsonError', () => {
  it.each([
    ['{\n  "a": 1,\n}', 'line 3, column 1: expected a field name in double quotes, found "}"'],
    ['{ "regions": [ }', 'line 1, column 16: expected a value, found "}"'],
    ['{"a" 1}', 'line 1, column 6: expected ":", found "1"'],
    ['{"a": 1', 'line 1, column 8: expected "," or "}", found the end of the file'],
    ['[1 2]', 'line 1, column 4: expected "," or "]", found "2"'],
    ['{"a": "x\ny"}', 'line 1, column 9: expected an escape (\\n, \\t) for a control character in a string, found "\\n"'],
    ['{"a": "\\q"}', 'line 1, column 8: expected an escape such as \\n, \\" or \\u00e9, found "\\\\"'],
    ['{"a": 01}', 'line 1, column 8: expected "," or "}", found "1"'],
    ['{"a": NaN}', 'line 1, column 7: expected a value, found "N"'],
    ['{} x', 'line 1, column 4: expected the end of the file, found "x"'],
    ['', 'line 1, column 1: expected a value, found the end of the file'],
  ])('%j: %s', (text, where) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(describeJsonError(text)).toBe(where);
  });

  it('finds the error in a text nested far deeper than the call stack would allow a recursive scan', () => {
    const depth = 100_000;
    expect(describeJsonError(`{"a": ${'['.repeat(depth)}`)).toBe(`line 1, column ${7 + depth}: expected a value, found the end of the file`);
    expect(describeJsonError(`${'[{"a": '.repeat(depth)}1]`)).toBe(`line 1, column ${7 * depth + 2}: expected "," or "}", found "]"`);
    expect(describeJsonError(`${'['.repeat(depth)}${']'.repeat(depth)}`)).toBeUndefined();
  });

  it('finds nothing wrong with JSON', () => {
    expect(describeJsonError('{"a": [1, -2.5e3, {"b": null}], "c": "\\u00e9\\n", "d": true, "e": false}')).toBeUndefined();
  });
});

describe('parseJsonFile', () => {
  it('parses JSON, with or without a byte-order mark', () => {
    expect(parseJsonFile('a.json', '{"a": 1}')).toEqual({ a: 1 });
    expect(parseJsonFile('a.json', '\uFEFF{"a": 1}')).toEqual({ a: 1 });
  });

  it('refuses broken JSON with a ConfigError naming the file, the line and the column', () => {
    expect(() => parseJsonFile('/etc/b.json', '{\n  "a": 1,\n}')).toThrow(
      new ConfigError('/etc/b.json: not valid JSON at line 3, column 1: expected a field name in double quotes, found "}"'),
    );
  });
});
