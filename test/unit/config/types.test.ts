import { describe, expect, it } from 'vitest';
import { parseBool, parseDict, parseFloat_, parseInteger, parseList, TypeValueError } from '../../../src/config/types.ts';

describe('oslo types', () => {
  it('bool accepts true/false/yes/no/on/off/1/0 in any case', () => {
    for (const t of ['true', 'TRUE', 'Yes', 'on', '1']) expect(parseBool(t)).toBe(true);
    for (const f of ['false', 'False', 'NO', 'off', '0']) expect(parseBool(f)).toBe(false);
    for (const bad of ['', 'y', 't', ' true', '2']) expect(() => parseBool(bad)).toThrow(TypeValueError);
  });

  it('int follows Python int(): whitespace, sign, underscores; blank is null; bounds', () => {
    expect(parseInteger(' 42 ')).toBe(42);
    expect(parseInteger('-7')).toBe(-7);
    expect(parseInteger('+1_000')).toBe(1000);
    expect(parseInteger('  ')).toBeNull();
    expect(() => parseInteger('abc')).toThrow('invalid integer "abc"');
    expect(() => parseInteger('1.5')).toThrow(TypeValueError);
    expect(() => parseInteger('1__0')).toThrow(TypeValueError);
    expect(() => parseInteger('0', { min: 1 })).toThrow('should be greater than or equal to 1');
    expect(() => parseInteger('70000', { min: 0, max: 65535 })).toThrow('should be less than or equal to 65535');
    expect(() => parseInteger('3', { choices: [1, 2] })).toThrow(TypeValueError);
  });

  it('float follows Python float()', () => {
    expect(parseFloat_('1.5')).toBe(1.5);
    expect(parseFloat_('.5')).toBe(0.5);
    expect(parseFloat_('2')).toBe(2);
    expect(parseFloat_('1e3')).toBe(1000);
    expect(parseFloat_('')).toBeNull();
    expect(() => parseFloat_('x1')).toThrow(TypeValueError);
    expect(() => parseFloat_('5', { max: 4.5 })).toThrow('should be less than or equal to 4.5');
  });

  it('list strips, drops trailing commas, splits on commas', () => {
    expect(parseList(' a, b ,c,, ')).toEqual(['a', 'b', 'c']);
    expect(parseList('')).toEqual([]);
    expect(parseList('a,,b')).toEqual(['a', '', 'b']);
  });

  it('dict parses NAME:VALUE pairs like oslo', () => {
    expect(parseDict('a:1, b : 2,c:x:y')).toEqual({ a: '1', b: '2', c: 'x:y' });
    expect(parseDict('')).toEqual({});
    // A piece without ":" is joined to the next one (oslo's retry loop).
    expect(parseDict('a,b:1')).toEqual({ 'a,b': '1' });
    expect(() => parseDict('nocolon')).toThrow('NAME:VALUE');
    expect(() => parseDict(':v')).toThrow('key name should not be empty');
    expect(() => parseDict('a:1,a:2')).toThrow('duplicate key a');
  });
});
