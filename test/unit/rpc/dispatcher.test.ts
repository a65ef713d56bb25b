import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Dispatcher, versionIsCompatible, type MethodSpec } from '../../../src/rpc/dispatcher.ts';
import { createRequestCodec } from '../../../src/rpc/request-codec.ts';
import { createSecureCodec } from '../../../src/rpc/secure-codec.ts';
import { toOsloFailure } from '../../../src/rpc/failure.ts';
import type { IncomingRequest } from '../../../src/rpc/envelope.ts';

const log = pino({ level: 'silent' });
const calls: Array<Record<string, unknown>> = [];
const methods = new Map<string, MethodSpec>([
  ['echo', { params: [{ name: 'a', required: true }, { name: 'b' }], handler: async (args) => (calls.push(args), args) }],
  ['_private', { params: [], handler: async () => 'secret' }],
]);
const d = new Dispatcher({ methods, version: '1.3', log });
const req = (o: Partial<IncomingRequest>): IncomingRequest => ({
  method: 'echo', args: { a: 1 }, version: '1.0', namespace: null, msgId: null, replyQ: null, timeout: null, uniqueId: null, context: {}, ...o,
});
const plain = createRequestCodec(null);
const failureOf = async (p: Promise<unknown>) => toOsloFailure(await p.then(() => null, (e: unknown) => e));

describe('version compatibility (oslo utils.version_is_compatible)', () => {
  it.each([
    ['1.3', '1.0', true], ['1.3', '1.3', true], ['1.3', '1.4', false], ['1.3', '2.0', false], ['1.1', '1.1.1', false], ['1.1.2', '1.1.1', true],
  ])('%s serves %s: %s', (imp, req, ok) => expect(versionIsCompatible(imp, req)).toBe(ok));
});

describe('dispatch order as oslo RPCDispatcher', () => {
  it('rejects a newer version with UnsupportedVersion before looking at the method', async () => {
    const f = await failureOf(d.dispatch(req({ method: 'nope', version: '1.4' }), plain, new AbortController().signal));
    expect(f.class).toBe('UnsupportedVersion');
    expect(f.module).toBe('oslo_messaging.rpc.dispatcher');
    expect(f.message).toBe('Endpoint does not support RPC version 1.4. Attempted method: nope');
  });
  it('rejects a namespace with UnsupportedVersion', async () => {
    expect((await failureOf(d.dispatch(req({ namespace: 'x' }), plain, new AbortController().signal))).class).toBe('UnsupportedVersion');
  });
  it('answers NoSuchMethod for unknown and private names', async () => {
    for (const method of ['nope', '_private']) {
      const f = await failureOf(d.dispatch(req({ method }), plain, new AbortController().signal));
      expect(f).toMatchObject({ class: 'NoSuchMethod', message: `Endpoint does not support RPC method ${method}` });
    }
  });
  it('checks the signature as Python does (TypeError)', async () => {
    let f = await failureOf(d.dispatch(req({ args: {} }), plain, new AbortController().signal));
    expect(f).toMatchObject({ class: 'TypeError', module: 'builtins', message: "echo() missing 1 required positional argument: 'a'" });
    f = await failureOf(d.dispatch(req({ args: { a: 1, zz: 2 } }), plain, new AbortController().signal));
    expect(f.message).toBe("echo() got an unexpected keyword argument 'zz'");
  });
  it('with a key: a plain context is KeyError(context), a wrong key never executes', async () => {
    const codec = createRequestCodec(createSecureCodec('right-key'));
    calls.length = 0;
    let f = await failureOf(d.dispatch(req({ context: { user: 'u' } }), codec, new AbortController().signal));
    expect(f).toMatchObject({ class: 'KeyError', module: 'builtins', message: "'context'", args: ['context'] });
    const wrong = createSecureCodec('wrong-key');
    f = await failureOf(d.dispatch(req({ context: { context: wrong.encrypt({}) }, args: { a: wrong.encrypt(1) } }), codec, new AbortController().signal));
    expect(f.class).toBe('ValueError');
    expect(calls).toHaveLength(0);
    const right = createSecureCodec('right-key');
    const out = await d.dispatch(req({ context: { context: right.encrypt({ request_id: 'req-1' }) }, args: { a: right.encrypt([1, 'x']) } }), codec, new AbortController().signal);
    expect(right.decrypt(out)).toEqual({ a: [1, 'x'] });
  });
});
