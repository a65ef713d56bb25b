import { describe, expect, it } from 'vitest';
import type { OpContext } from '../../../src/datastore.ts';
import { GuestError } from '../../../src/errors.ts';
import { explainingStarts, type ServiceRunner } from '../../../src/service/runner.ts';

const failing = (err: Error): ServiceRunner => ({
  kind: 'process',
  start: async () => {
    throw err;
  },
  restart: async () => {
    throw err;
  },
  stop: async () => {},
  state: () => 'crashed',
  close: async () => {},
});
const ctx = {} as OpContext;

describe('explainingStarts', () => {
  it("leads a failed start or restart with the server's words since the mark, redacted", async () => {
    let marks = 0;
    const r = explainingStarts(failing(new GuestError('the database server exited; see /x.err')), () => ++marks, (m) => `since ${m}: ALTER USER 'a'@'%' IDENTIFIED BY 'hunter2-secret'`);
    const e1 = (await r.start(ctx).catch((e: unknown) => e)) as Error;
    expect(e1).toBeInstanceOf(GuestError);
    expect(e1.message).toMatch(/^since 1: ALTER USER 'a'@'%' IDENTIFIED BY '.+' \(the database server exited; see \/x\.err\)$/);
    expect(e1.message).not.toContain('hunter2-secret');
    expect(((await r.restart(ctx).catch((e: unknown) => e)) as Error).message).toMatch(/^since 2: /);
  });

  it('passes the error on as it is when the server said nothing', async () => {
    const err = new GuestError('the database server did not answer within 120 s');
    const r = explainingStarts(failing(err), () => 0, () => null);
    expect(await r.start(ctx).catch((e: unknown) => e)).toBe(err);
  });
});
