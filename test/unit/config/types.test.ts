import { describe, expect, it } from 'vitest';
import {
  parseBool,
  parseDict,
  parseFloat_,
  parseHostname,
  parseInteger,
  parseIpAddress,
  parseList,
  parseRange,
  parseString,
  parseUri,
  TypeValueError,
} from '../../../src/config/types.ts';

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

  it('string choices, case-sensitive unless ignore_case (value kept as written)', () => {
    expect(parseString('ext4', ['ext3', 'ext4'])).toBe('ext4');
    expect(() => parseString('EXT4', ['ext3', 'ext4'])).toThrow('valid values are ext3, ext4, but found "EXT4"');
    expect(parseString('days', ['Seconds', 'Days'], true)).toBe('days');
  });

  it('range lists (tcp_ports) validate each item and its bounds, re-joining on failure like oslo', () => {
    const item = (v: string): string => parseRange(v, { min: 1, max: 65535 });
    expect(parseList('3306, 4000-4010,9000-8990', item)).toEqual(['3306', '4000-4010', '9000-8990']);
    expect(() => parseList('3306,x', item)).toThrow('invalid range "x"');
    expect(() => parseList('0', item)).toThrow('should be greater than or equal to 1');
    expect(() => parseList('1-70000', item)).toThrow('should be less than or equal to 65535');
    expect(() => parseList('01', item)).toThrow(TypeValueError);
  });

  it('URI needs scheme and host; IP address and hostname are checked', () => {
    expect(parseUri('http://10.0.0.10:8080/v1/AUTH_')).toBe('http://10.0.0.10:8080/v1/AUTH_');
    expect(parseUri('https://user@[fd00::1]/x')).toBe('https://user@[fd00::1]/x');
    for (const bad of ['', '10.0.0.10:8080', 'http://', '/v1/AUTH_']) expect(() => parseUri(bad)).toThrow(TypeValueError);
    expect(parseIpAddress('0.0.0.0')).toBe('0.0.0.0');
    expect(parseIpAddress('::1')).toBe('::1');
    expect(() => parseIpAddress('')).toThrow('cannot be an empty string');
    expect(() => parseIpAddress('300.1.1.1')).toThrow(TypeValueError);
    expect(parseHostname('localhost')).toBe('localhost');
    expect(parseHostname('db-1.example.org.')).toBe('db-1.example.org.');
    for (const bad of ['', '-a.b', 'a..b', 'host.123', 'under_score']) expect(() => parseHostname(bad)).toThrow(TypeValueError);
  });
});
