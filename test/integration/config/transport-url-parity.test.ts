/** parseTransportUrl against oslo.messaging 14's own TransportURL.parse on the same URLs. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTransportUrl } from '../../../src/config/transport-url.ts';
import { exec } from '../../../src/process/exec.ts';

const PYTHON = '/usr/bin/python3';
const DUMP = join(import.meta.dirname, 'transport-url-dump.py');

const URLS = [
  'rabbit://',
  'rabbit://guest:guest@localhost:5672/',
  'rabbit://openstack:p%40ss%3Aw0rd@10.0.0.11:5672,openstack:p%40ss%3Aw0rd@10.0.0.12/',
  'rabbit://u:p@h1:5673,u2:p2@h2/my%2Fvhost?ssl=1&a=x&a=y',
  'rabbit://a:b@h1,h2:1234/vh',
  'rabbit://me@[fd00::1]:5671,[fd00::2]/',
  'rabbit://user%20name:pa%25ss@host',
  'rabbit://u:p:with:colons@host:5672/',
  'rabbit://u:p@host:/',
  'kombu+memory:///',
];

describe('transport_url parity with oslo.messaging', () => {
  it('parses like TransportURL.parse + impl_rabbit defaults', async () => {
    if (!existsSync(PYTHON) || !existsSync('/usr/lib/python3/dist-packages/oslo_messaging/transport.py')) {
      throw new Error('oslo.messaging is needed as the reference: apt-get install -y --no-install-recommends python3-oslo.messaging');
    }
    const { stdout } = await exec(PYTHON, [DUMP, ...URLS], { timeoutMs: 60_000 });
    const oslo = JSON.parse(stdout) as unknown[];
    URLS.forEach((url, i) => {
      const { ssl: _ssl, ...ours } = parseTransportUrl(url);
      expect([url, ours]).toEqual([url, oslo[i]]);
    });
  });
});
