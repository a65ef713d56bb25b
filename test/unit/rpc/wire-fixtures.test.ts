// Unit vectors from a byte-exact capture of Trove 18 + oslo.messaging 14
// traffic (test/fixtures/wire-capture.jsonl, instance key below).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRequest, parseReply } from '../../../src/rpc/envelope.ts';
import { createSecureCodec, pyJson } from '../../../src/rpc/secure-codec.ts';

const KEY = 'rig-instance-key-0123456789abcdef';
const raw = readFileSync(new URL('../../fixtures/wire-capture.jsonl', import.meta.url), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const decoded = readFileSync(new URL('../../fixtures/wire-capture.decoded.jsonl', import.meta.url), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

const codec = createSecureCodec(KEY);
/** Re-encrypts with the IV a captured ciphertext used, to compare bytes. */
const sealWithIvOf = (captured: string, value: unknown): string => {
  const iv = Buffer.from(captured, 'base64').subarray(0, 16);
  return createSecureCodec(KEY, () => Buffer.from(iv)).encrypt(value);
};

describe('captured Trove traffic', () => {
  const requests = raw.map((r, i) => ({ r, d: decoded[i] })).filter(({ r }) => r.exchange === 'trove');

  it('parses every request and casts of the capture', () => {
    expect(requests.length).toBeGreaterThan(5);
    for (const { r } of requests) {
      const req = parseRequest(r.body);
      expect(req.method).toMatch(/^[a-z_]+$/);
      expect(req.uniqueId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('decrypts contexts and arguments to what Trove sent, and re-encrypts them byte for byte', () => {
    let checked = 0;
    for (const { r, d } of requests.filter(({ r }) => r.routing_keys[0].startsWith('guestagent.'))) {
      const req = parseRequest(r.body);
      const inner = d['oslo.message'];
      if (!('context' in req.context)) continue; // the capture's unencrypted and wrong-key requests
      let ctx: unknown;
      try {
        ctx = codec.decrypt(req.context['context']);
      } catch {
        continue; // sealed with another key on purpose
      }
      checked++;
      expect(ctx).toEqual(inner._context_context);
      // Our Python-style JSON encodes exactly as json.dumps: same plaintext, same ciphertext.
      expect(sealWithIvOf(req.context['context'] as string, ctx)).toBe(req.context['context']);
      for (const [k, v] of Object.entries(req.args)) {
        // (The decoded copy has paths rewritten, so the raw capture is the reference here.)
        expect(sealWithIvOf(v as string, codec.decrypt(v))).toBe(v);
      }
    }
    expect(checked).toBeGreaterThan(3);
  });

  it('reads replies: encrypted results and plain-text failures', () => {
    const replies = raw.map((r, i) => ({ r, d: decoded[i] })).filter(({ r }) => r.exchange === '');
    expect(replies.length).toBeGreaterThan(2);
    for (const { r, d } of replies) {
      const rep = parseReply(r.body);
      expect(rep.ending).toBe(true);
      if (rep.failure) {
        const f = JSON.parse(rep.failure);
        expect(Object.keys(f).sort()).toEqual(['args', 'class', 'kwargs', 'message', 'module', 'tb']);
      } else {
        expect(codec.decrypt(rep.result)).toEqual(d['oslo.message'].result);
      }
    }
  });

  it('writes the outer envelope exactly as oslo does', () => {
    const body: string = raw[0].body;
    const outer = JSON.parse(body);
    expect(pyJson(outer)).toBe(body);
    expect(pyJson(JSON.parse(outer['oslo.message']))).toBe(outer['oslo.message']);
  });

  it('conductor casts carry entity + csz-instance-id strings', () => {
    const casts = requests.filter(({ r }) => r.routing_keys[0] === 'trove-conductor');
    expect(casts.length).toBeGreaterThan(0);
    for (const { r, d } of casts) {
      const req = parseRequest(r.body);
      expect(req.context['csz-instance-id']).toBe('11111111-2222-3333-4444-555555555555');
      for (const [k, v] of Object.entries(req.args)) {
        const wrapped = JSON.parse(v as string);
        expect(Object.keys(wrapped)).toEqual(['entity', 'csz-instance-id']);
        expect(codec.decrypt(wrapped.entity)).toEqual(d['oslo.message'].args[k].entity);
      }
    }
  });
});
