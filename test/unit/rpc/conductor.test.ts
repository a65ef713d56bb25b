import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ConductorClient, type CastConnection } from '../../../src/rpc/conductor.ts';
import { parseRequest } from '../../../src/rpc/envelope.ts';
import { createSecureCodec } from '../../../src/rpc/secure-codec.ts';

function fakeConnection() {
  const published: Array<{ exchange: string; routingKey: string; body: Buffer; props: Record<string, unknown> }> = [];
  const conn: CastConnection = {
    whenConnected: async () => ({
      createChannel: async () => ({
        assertExchange: async () => ({}),
        publish: (exchange, routingKey, body, props) => (published.push({ exchange, routingKey, body, props }), true),
        close: async () => {},
        once: () => undefined,
        on: () => undefined,
      }),
    }),
  };
  return { conn, published };
}

describe('conductor casts (ConductorGuestSerializer format)', () => {
  it('wraps each argument as {"entity", "csz-instance-id"} and encrypts the context', async () => {
    const { conn, published } = fakeConnection();
    const codec = createSecureCodec('k');
    const c = new ConductorClient({ connection: conn, exchange: 'trove', topic: 'trove-conductor', guestId: 'g1', codec, exchangeDurable: false, exchangeAutoDelete: false, log: pino({ level: 'silent' }), now: () => 1000.5 });
    await c.heartbeat('healthy');
    await c.heartbeat('healthy');
    const [a, b] = published.map((p) => parseRequest(p.body));
    expect(published[0]).toMatchObject({ exchange: 'trove', routingKey: 'trove-conductor', props: { contentType: 'application/json', deliveryMode: 2 } });
    expect(a!.method).toBe('heartbeat');
    expect(a!.version).toBe('1.0');
    expect(Object.keys(a!.args)).toEqual(['instance_id', 'sent', 'payload']);
    const un = (v: unknown) => {
      const w = JSON.parse(v as string);
      expect(w['csz-instance-id']).toBe('g1');
      return codec.decrypt(w.entity);
    };
    expect(un(a!.args['instance_id'])).toBe('g1');
    expect(un(a!.args['payload'])).toEqual({ service_status: 'healthy' });
    // The clock did not move, yet `sent` strictly increases: conductor drops stale heartbeats.
    expect(un(b!.args['sent'])).toBeGreaterThan(un(a!.args['sent']) as number);
    expect(a!.context['csz-instance-id']).toBe('g1');
    const ctx = codec.decrypt(a!.context['context']) as Record<string, unknown>;
    expect(ctx).toMatchObject({ user: null, is_admin: false, roles: [], user_identity: '- - - - -' });
    expect(String(ctx['request_id'])).toMatch(/^req-[0-9a-f-]{36}$/);
  });

  it('without a key sends plain values and a flattened context', async () => {
    const { conn, published } = fakeConnection();
    const c = new ConductorClient({ connection: conn, exchange: 'trove', topic: 'trove-conductor', guestId: 'g1', codec: null, exchangeDurable: false, exchangeAutoDelete: false, log: pino({ level: 'silent' }) });
    await c.updateBackup('b1', { state: 'COMPLETED', size: 1.5, checksum: 'abc', location: 'http://x/c/b1.xbstream.gz', success: true });
    const r = parseRequest(published[0]!.body);
    expect(r.method).toBe('update_backup');
    expect(r.args).toMatchObject({ instance_id: 'g1', backup_id: 'b1', state: 'COMPLETED', success: true });
    expect(r.context['is_admin']).toBe(false);
  });
});
