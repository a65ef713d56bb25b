import { describe, expect, it } from 'vitest';
import { metadataHeaders, parseLocation } from '../../../src/backup/pipeline.ts';
import { manifestJson } from '../../../src/backup/swift-client.ts';
import { BadRequestError } from '../../../src/errors.ts';

describe('manifestJson', () => {
  it("is byte-identical to Trove's json.dumps(segment_results)", () => {
    // Python: json.dumps([{'path': ..., 'etag': ..., 'size_bytes': ...}, ...])
    const expected =
      '[{"path": "database_backups/b1_00000000", "etag": "0123456789abcdef0123456789abcdef", "size_bytes": 2147483648}, ' +
      '{"path": "database_backups/b1_00000001", "etag": "fedcba9876543210fedcba9876543210", "size_bytes": 17}]';
    expect(
      manifestJson([
        { path: 'database_backups/b1_00000000', etag: '0123456789abcdef0123456789abcdef', size_bytes: 2147483648 },
        { path: 'database_backups/b1_00000001', etag: 'fedcba9876543210fedcba9876543210', size_bytes: 17 },
      ]),
    ).toBe(expected);
  });
});

describe('metadataHeaders', () => {
  it("maps keys as Trove's _set_attr does ('_' becomes '-')", () => {
    expect(metadataHeaders({ datastore: 'mysql', datastore_version: '8.0', lsn: '42', parent_location: 'u' })).toEqual({
      'X-Object-Meta-datastore': 'mysql',
      'X-Object-Meta-datastore-version': '8.0',
      'X-Object-Meta-lsn': '42',
      'X-Object-Meta-parent-location': 'u',
    });
  });
  it('rejects keys and values that could inject headers', () => {
    expect(() => metadataHeaders({ 'a: b': 'x' })).toThrow(BadRequestError);
    expect(() => metadataHeaders({ a: 'x\r\nX-Evil: 1' })).toThrow(BadRequestError);
  });
});

describe('parseLocation', () => {
  it('takes the last two path parts, as Trove does', () => {
    expect(parseLocation('http://swift:8080/v1/AUTH_p/database_backups/b1.xbstream.gz')).toEqual({ container: 'database_backups', name: 'b1.xbstream.gz' });
  });
  it('rejects malformed locations', () => {
    expect(() => parseLocation('b1.xbstream.gz')).toThrow(BadRequestError);
    expect(() => parseLocation('http://swift/v1/AUTH_p/c/..')).toThrow(BadRequestError);
  });
});
