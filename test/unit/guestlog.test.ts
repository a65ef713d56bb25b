// Guest log bookkeeping against an in-memory Swift: what is published, in
// which pieces, what a rotated file does, who may see which log, and the
// checks Trove's manager makes before acting.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SwiftClient } from '../../src/backup/swift-client.ts';
import { SwiftError } from '../../src/errors.ts';
import { createGuestLogService } from '../../src/guestlog.ts';

function memorySwift() {
  const objects = new Map<string, { body: Buffer; headers: Record<string, string> }>();
  const key = (c: string, n: string) => `${c}/${n}`;
  const client = {
    storageUrl: async () => 'http://swift.invalid/v1/AUTH_x',
    async putContainer() {},
    async putObject(c: string, n: string, body: Buffer, o: { headers?: Record<string, string> } = {}) {
      objects.set(key(c, n), { body: Buffer.from(body), headers: o.headers ?? {} });
      return { etag: '' };
    },
    async get(c: string, n: string) {
      const o = objects.get(key(c, n));
      if (!o) throw new SwiftError('not found', { method: 'GET', path: n, status: 404 });
      return { etag: '', contentLength: o.body.length, headers: {}, body: Readable.from([o.body]) };
    },
    async list(c: string, o: { prefix?: string } = {}) {
      return [...objects.keys()].filter((k) => k.startsWith(`${c}/${o.prefix ?? ''}`)).map((k) => k.slice(c.length + 1)).sort();
    },
    async delete(c: string, n: string) {
      objects.delete(key(c, n));
    },
  } as unknown as SwiftClient;
  return { client, objects };
}

let dir: string;
let file: string;
let enabled: boolean;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ga-glog-'));
  file = join(dir, 'general.log');
  enabled = false;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ctx = { log: pino({ level: 'silent' }), signal: new AbortController().signal };
function service(limit = 64) {
  return createGuestLogService({
    guestId: 'g1', manager: 'postgresql', exposed: ['general'], agentLogFile: join(dir, 'agent.log'), container: 'database_logs', limit, expirySec: 60, log: pino({ level: 'silent' }),
    datastore: {
      defs: () => [{ name: 'general', type: 'USER', file }],
      isEnabled: async () => enabled,
      setEnabled: async (_n, on) => ((enabled = on), true),
    },
  });
}

describe('guest logs', () => {
  it('publishes in pieces cut at line ends, then only what is new; the metafile keeps the published size', async () => {
    const { client, objects } = memorySwift();
    const req = { swift: () => client, isAdmin: false };
    const s = service(64);
    expect(await s.action(req, { name: 'general', enable: true, disable: false, publish: false, discard: false }, ctx)).toMatchObject({ status: 'Restart Required' });
    s.restarted();
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i} ${'x'.repeat(20)}\n`).join('');
    writeFileSync(file, lines);
    const first = await s.action(req, { name: 'general', enable: false, disable: false, publish: true, discard: false }, ctx);
    expect(first).toMatchObject({ status: 'Published', published: lines.length, pending: 0, container: 'database_logs', prefix: 'g1/postgresql-general/' });
    const pieces = [...objects.entries()].filter(([k]) => k.startsWith('database_logs/g1/postgresql-general/log-'));
    expect(pieces.length).toBeGreaterThan(1);
    for (const [, o] of pieces) {
      expect(o.body.length).toBeLessThanOrEqual(64);
      expect(o.body.at(-1)).toBe(0x0a);
      expect(o.headers['X-Delete-After']).toBe('60');
      expect(Number(o.headers['X-Object-Meta-Lines'])).toBe(o.body.toString().split('\n').length - 1);
    }
    expect(pieces.map(([, o]) => o.body.toString()).join('')).toBe(lines);
    const meta = JSON.parse(objects.get('database_logs/g1/postgresql-general_metafile')!.body.toString());
    expect(meta).toMatchObject({ log_name: 'general', log_type: 'USER', log_size: lines.length });
    appendFileSync(file, 'new line\n');
    expect((await s.list(req, ctx))[0]).toMatchObject({ status: 'Partial', pending: 9 });
    await s.action(req, { name: 'general', enable: false, disable: false, publish: true, discard: false }, ctx);
    const after = [...objects.keys()].filter((k) => k.includes('/log-'));
    expect(objects.get(after.at(-1)!)!.body.toString()).toBe('new line\n');
  });

  it('a rotated file replaces what was published; a fresh service reads the published size back from Swift', async () => {
    const { client, objects } = memorySwift();
    const req = { swift: () => client, isAdmin: false };
    enabled = true;
    writeFileSync(file, 'old first line\nmore\n');
    await service().action(req, { name: 'general', enable: false, disable: false, publish: true, discard: false }, ctx);
    const s = service();
    expect((await s.list(req, ctx))[0]).toMatchObject({ status: 'Published', published: 20 });
    writeFileSync(file, 'rotated\n');
    expect((await s.list(req, ctx))[0]).toMatchObject({ status: 'Rotated', pending: 8 });
    await s.action(req, { name: 'general', enable: false, disable: false, publish: true, discard: false }, ctx);
    const bodies = [...objects.entries()].filter(([k]) => k.includes('/log-')).map(([, o]) => o.body.toString());
    expect(bodies).toEqual(['rotated\n']);
  });

  it("refuses what Trove's manager refuses, and hides logs not exposed unless the caller is admin", async () => {
    const { client } = memorySwift();
    const s = service();
    const user = { swift: () => client, isAdmin: false };
    await expect(s.action(user, { name: 'general', enable: true, disable: true, publish: false, discard: false }, ctx)).rejects.toMatchObject({ troveClass: 'BadRequest' });
    await expect(s.action(user, { name: 'guest', enable: true, disable: false, publish: false, discard: false }, ctx)).rejects.toThrow(/Cannot enable a SYSTEM log/);
    await expect(s.action(user, { name: 'nope', enable: false, disable: false, publish: true, discard: false }, ctx)).rejects.toMatchObject({ troveClass: 'NotFound' });
    await expect(s.action(user, { name: 'guest', enable: false, disable: false, publish: true, discard: false }, ctx)).rejects.toMatchObject({ troveClass: 'LogAccessForbidden' });
    expect((await s.list(user, ctx)).map((l) => l.name)).toEqual(['general']);
    expect((await s.list({ swift: () => client, isAdmin: true }, ctx)).map((l) => l.name)).toEqual(['general', 'guest']);
    // The agent's log does not exist here: publishing it says so.
    await expect(s.action({ swift: () => client, isAdmin: true }, { name: 'guest', enable: false, disable: false, publish: true, discard: false }, ctx)).rejects.toThrow(/does not exist/);
  });
});
