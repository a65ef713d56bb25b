// Secrets never reach the log: structured fields, nested fields, free text,
// error messages and stacks, URLs with passwords.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return { stream, text: () => chunks.join('') };
}

describe('log redaction', () => {
  it('censors secret fields, URLs, SQL and error text', () => {
    const s = sink();
    const log = createLogger({ destination: s.stream, level: 'debug' });
    const SECRETS = ['hunter2', 's3cr3t-key', 'tok-abc', 'rabbitpw', "p'w\\d", 'sqlpw'];
    log.info({ password: 'hunter2', user: { _password: 'hunter2' }, instance_rpc_encr_key: 's3cr3t-key', auth_token: 'tok-abc' }, 'fields');
    log.info({ args: { users: [{ _name: 'bob', _password: 'hunter2' }] } }, 'nested');
    log.info(`connecting to rabbit://guest:rabbitpw@h1:5672/`);
    log.warn({ err: new Error("CREATE USER 'bob'@'%' IDENTIFIED BY 'sqlpw' failed; password=hunter2") }, 'sql failed');
    log.info({ transport_url: 'rabbit://u:rabbitpw@h/' }, 'config');
    log.error({ err: new Error("mysqld --password=p'w\\d exited") }, 'argv');
    const out = s.text();
    expect(out).toContain('fields');
    expect(out).toContain('bob');
    for (const secret of SECRETS) expect(out).not.toContain(secret);
  });
});
