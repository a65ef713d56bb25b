import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.ts';
import { parseIni } from '../../../src/config/ini.ts';

const values = (text: string, section: string, key: string): string[] =>
  parseIni(text, '/x.conf').sections.get(section)?.get(key)?.map((v) => v.value) ?? [];

describe('parseIni (oslo iniparser semantics)', () => {
  it('reads = and : assignments, whichever separator comes first', () => {
    const text = '[DEFAULT]\na = 1\nb: 2\nc = x:y\nd: u=v\n';
    expect(values(text, 'DEFAULT', 'a')).toEqual(['1']);
    expect(values(text, 'DEFAULT', 'b')).toEqual(['2']);
    expect(values(text, 'DEFAULT', 'c')).toEqual(['x:y']);
    expect(values(text, 'DEFAULT', 'd')).toEqual(['u=v']);
  });

  it('joins continuation lines with newlines, a blank line ends the value', () => {
    const text = '[DEFAULT]\nk = first\n  second\n\tthird\n\nother = 1\n';
    expect(values(text, 'DEFAULT', 'k')).toEqual(['first\nsecond\nthird']);
  });

  it('keeps every occurrence in order, strips matching quotes only, no inline comments', () => {
    const text = '[DEFAULT]\nk = "a b"\nk = \'c\'\nk = "d\'\nk = v # not a comment\n';
    expect(values(text, 'DEFAULT', 'k')).toEqual(['a b', 'c', '"d\'', 'v # not a comment']);
  });

  it('skips # and ; comments and blank lines, handles CRLF', () => {
    const text = '# top\r\n[DEFAULT]\r\n; note\r\n#k = 1\r\nk = 2\r\n';
    expect(values(text, 'DEFAULT', 'k')).toEqual(['2']);
  });

  it('lowercases section names except DEFAULT, keeps keys case-sensitive, merges repeated sections', () => {
    const file = parseIni('[MySQL]\nMount_Point = /a\n[mysql]\nx = 1\n[default]\ny = 2\n', '/x.conf');
    expect([...file.sections.keys()]).toEqual(['mysql', 'default']);
    expect([...(file.sections.get('mysql')?.keys() ?? [])]).toEqual(['Mount_Point', 'x']);
  });

  it('records the line of each assignment', () => {
    const file = parseIni('[DEFAULT]\n\na = 1\n', '/x.conf');
    expect(file.sections.get('DEFAULT')?.get('a')).toEqual([{ value: '1', line: 3 }]);
  });

  it.each([
    ['[DEFAULT]\njust words\n', 2, "No ':' or '=' found in assignment"],
    ['[DEFAULT]\n= v\n', 2, 'Key cannot be empty'],
    ['  indented\n', 1, 'Unexpected continuation line'],
    ['[DEFAULT\n', 1, 'Invalid section (must end with ])'],
    ['[]\n', 1, 'Empty section name'],
    ['k = v\n', 1, 'Section must be started before assignment'],
  ])('rejects malformed input %j naming file and line', (text, line, reason) => {
    let err: unknown;
    try {
      parseIni(text, '/etc/trove/conf.d/bad.conf');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`/etc/trove/conf.d/bad.conf: line ${line}: ${reason}`);
    expect((err as ConfigError).where.file).toBe('/etc/trove/conf.d/bad.conf');
  });

  it('does not echo the offending line (it may hold a secret)', () => {
    expect(() => parseIni('[DEFAULT]\nhunter2secret\n', '/a.conf')).toThrow(/^(?!.*hunter2secret)/su);
  });
});
