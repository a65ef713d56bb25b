import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.ts';
import { parseTransportUrl } from '../../../src/config/transport-url.ts';

describe('parseTransportUrl (oslo TransportURL.parse + impl_rabbit)', () => {
  it('parses several hosts with percent-encoded credentials, vhost and query', () => {
    const u = parseTransportUrl('rabbit://user:p%40ss%2Fw%3Ard@h1:5673,user2:pass2@h2/my%2Fvhost?ssl=1&a=x&a=y');
    expect(u.transport).toBe('rabbit');
    expect(u.hosts).toEqual([
      { host: 'h1', port: 5673, username: 'user', password: 'p@ss/w:rd' },
      { host: 'h2', port: 5672, username: 'user2', password: 'pass2' },
    ]);
    expect(u.virtualHost).toBe('my/vhost');
    expect(u.query).toEqual({ ssl: '1', a: 'x,y' });
    // oslo 14's rabbit driver ignores ?ssl=; TLS comes from [oslo_messaging_rabbit] ssl.
    expect(u.ssl).toBe(false);
    expect(parseTransportUrl('rabbit://h/', { ssl: true }).ssl).toBe(true);
  });

  it('does not let a host inherit credentials from another one', () => {
    const u = parseTransportUrl('rabbit://a:b@h1,h2:1234/');
    expect(u.hosts[1]).toEqual({ host: 'h2', port: 1234, username: null, password: null });
  });

  it('defaults vhost to "/" and the bare default URL to guest@localhost:5672', () => {
    expect(parseTransportUrl('rabbit://u:p@h').virtualHost).toBe('/');
    expect(parseTransportUrl('rabbit://u:p@h/').virtualHost).toBe('/');
    expect(parseTransportUrl('rabbit://')).toEqual({
      transport: 'rabbit',
      hosts: [{ host: 'localhost', port: 5672, username: 'guest', password: 'guest' }],
      virtualHost: '/',
      ssl: false,
      query: {},
    });
  });

  it('handles IPv6 hosts and user without password', () => {
    const u = parseTransportUrl('rabbit://me@[fd00::1]:5671,[fd00::2]/');
    expect(u.hosts).toEqual([
      { host: 'fd00::1', port: 5671, username: 'me', password: null },
      { host: 'fd00::2', port: 5672, username: null, password: null },
    ]);
  });

  it('rejects bad URLs without leaking the password', () => {
    const cases = ['no-scheme-here', 'rabbit://u:s3cr3tpw@h:notaport/', 'rabbit://u:s3cr3tpw@[fd00::1/'];
    for (const url of cases) {
      let err: unknown;
      try {
        parseTransportUrl(url, { file: '/etc/trove/trove-guestagent.conf' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^\/etc\/trove\/trove-guestagent\.conf: \[DEFAULT\] transport_url: /u);
      expect(msg).not.toContain('s3cr3tpw');
    }
  });
});
