import { describe, expect, it } from 'vitest';
import { util as undiciUtil } from 'undici';
import { LowerCaseMemo, NameMemo, ValueMemo } from '../../src/proxy/field-memo.js';

const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('NameMemo', () => {
  it("gives what undici's lookup gives, answer after answer, whatever the last answer held at that place", () => {
    const memo = new NameMemo(undiciUtil.headerNameToString);
    // Each answer's names in turn at positions 0, 1, 2…: the same, in another case, lookalikes, Latin-1 letters.
    const answers = [
      ['Content-Type', 'Date', 'X-Fn'],
      ['Content-Type', 'Date', 'X-Fn'],
      ['CONTENT-TYPE', 'date', 'x-fn'],
      ['Content-Typf', 'Dat', 'X-Fn-'],
      ['X-\u00c9t\u00e9', 'x-\u00e9t\u00e9', 'X-\u00c9T\u00c9'],
      ['x-\u00e9t\u00e9', 'X-\u00c9t\u00e9', 'x-\u00e9t\u00e9'],
      ['Connectio\u00ce', 'connectio\u00ee', 'Connection'],
      ['', 'Content-Type', ''],
    ];
    for (const names of answers) {
      names.forEach((name, position) => expect(memo.name(position, latin1(name))).toBe(undiciUtil.headerNameToString(latin1(name))));
    }
  });

  it('keeps no hold on the bytes: a Buffer changed after a call reads as it is now', () => {
    const memo = new NameMemo(undiciUtil.headerNameToString);
    const bytes = latin1('x-one');
    expect(memo.name(0, bytes)).toBe('x-one');
    bytes.write('x-two', 'latin1');
    expect(memo.name(0, bytes)).toBe('x-two');
  });

  it('reads fields past the places it remembers', () => {
    const memo = new NameMemo(undiciUtil.headerNameToString);
    for (let position = 0; position < 40; position++) expect(memo.name(position, latin1(`X-Field-${position}`))).toBe(`x-field-${position}`);
    for (let position = 0; position < 40; position++) expect(memo.name(position, latin1(`X-FIELD-${position}`))).toBe(`x-field-${position}`);
  });
});

describe('ValueMemo', () => {
  it("gives each value's Latin-1 text, byte for byte (no case folding), whatever the last answer held at that place", () => {
    const memo = new ValueMemo();
    const answers = [
      ['text/plain', 'Thu, 05 Dec 2026 12:00:00 GMT', '3'],
      ['text/plain', 'Thu, 05 Dec 2026 12:00:00 GMT', '3'],
      ['Text/plain', 'Thu, 05 Dec 2026 12:00:01 GMT', '4'],
      ['caf\u00e9', 'caf\u00c9', ''],
      ['', '', '3'],
    ];
    for (const values of answers) values.forEach((value, position) => expect(memo.value(position, latin1(value))).toBe(value));
  });

  it('keeps no hold on the bytes, and reads values past the places it remembers', () => {
    const memo = new ValueMemo();
    const bytes = latin1('gzip');
    expect(memo.value(3, bytes)).toBe('gzip');
    bytes.write('zstd', 'latin1');
    expect(memo.value(3, bytes)).toBe('zstd');
    expect(memo.value(100, latin1('far'))).toBe('far');
  });
});

describe('LowerCaseMemo', () => {
  it('gives what toLowerCase gives, request after request, whatever the last request held at that place', () => {
    const memo = new LowerCaseMemo();
    // Names as Node hands them over, a new string each request (built from parts here).
    const requests = [
      ['Host', 'User-Agent', 'Accept'],
      ['Host', 'User-Agent', 'Accept'],
      ['HOST', 'user-agent', 'ACCEPT'],
      ['Hos', 'User-Agent-', 'X_Edge_Org'],
      ['X-\u00c9t\u00e9', 'x-\u00e9t\u00e9', '\u0130stanbul'],
      ['', 'Cookie', ''],
      ['Host', 'Connection', 'X-Edge-Fn'],
    ];
    for (const names of requests) {
      names.forEach((name, position) => {
        const fresh = [...name].join('');
        expect(memo.name(position, fresh)).toBe(name.toLowerCase());
      });
    }
  });

  it('reads fields past the places it remembers', () => {
    const memo = new LowerCaseMemo();
    for (let position = 0; position < 40; position++) expect(memo.name(position, `X-Field-${position}`)).toBe(`x-field-${position}`);
    for (let position = 0; position < 40; position++) expect(memo.name(position, `X-Other-${position}`)).toBe(`x-other-${position}`);
  });
});

