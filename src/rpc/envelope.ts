/**
 * The oslo.messaging 2.0 envelope and the message dicts inside it, as
 * oslo_messaging/_drivers/common.py and amqpdriver.py write them: the body is
 * `{"oslo.version": "2.0", "oslo.message": "<JSON string>"}`; the context is
 * flattened into `_context_<key>` entries; calls carry `_msg_id`, `_reply_q`,
 * `_timeout`; every message carries `_unique_id`.
 */
import { randomUUID } from 'node:crypto';
import { pyJson } from './secure-codec.ts';

export const OSLO_VERSION = '2.0';

export class EnvelopeError extends Error {}

export interface IncomingRequest {
  method: string;
  args: Record<string, unknown>;
  version: string;
  namespace: string | null;
  /** Present on calls: where and with which id to reply. */
  msgId: string | null;
  replyQ: string | null;
  /** The caller's call-monitor timeout in seconds, when it asked for heartbeats. */
  timeout: number | null;
  uniqueId: string | null;
  /** The `_context_` entries with the prefix removed, undecoded. */
  context: Record<string, unknown>;
}

export function uuidHex(): string {
  return randomUUID().replace(/-/g, '');
}

/** Parses an AMQP body into a request; throws EnvelopeError for anything else. */
export function parseRequest(body: Buffer | string): IncomingRequest {
  let outer: unknown;
  try {
    outer = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (e) {
    throw new EnvelopeError('body is not JSON', { cause: e });
  }
  if (!isObject(outer)) throw new EnvelopeError('body is not a JSON object');
  let msg: unknown = outer;
  if ('oslo.message' in outer) {
    if (outer['oslo.version'] !== OSLO_VERSION) {
      throw new EnvelopeError(`unsupported oslo.version ${String(outer['oslo.version'])}`);
    }
    const inner = outer['oslo.message'];
    if (typeof inner !== 'string') throw new EnvelopeError('oslo.message is not a string');
    try {
      msg = JSON.parse(inner);
    } catch (e) {
      throw new EnvelopeError('oslo.message is not JSON', { cause: e });
    }
  }
  if (!isObject(msg)) throw new EnvelopeError('message is not a JSON object');
  const method = msg['method'];
  if (typeof method !== 'string' || method === '') throw new EnvelopeError('message has no method');
  const args = msg['args'] ?? {};
  if (!isObject(args)) throw new EnvelopeError('args is not an object');
  const context: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg)) {
    if (k.startsWith('_context_')) context[k.slice('_context_'.length)] = v;
  }
  const timeout = msg['_timeout'];
  return {
    method,
    args,
    version: typeof msg['version'] === 'string' ? msg['version'] : '1.0',
    namespace: typeof msg['namespace'] === 'string' ? msg['namespace'] : null,
    msgId: typeof msg['_msg_id'] === 'string' ? msg['_msg_id'] : null,
    replyQ: typeof msg['_reply_q'] === 'string' ? msg['_reply_q'] : null,
    timeout: typeof timeout === 'number' && timeout > 0 ? timeout : null,
    uniqueId: typeof msg['_unique_id'] === 'string' ? msg['_unique_id'] : null,
    context,
  };
}

/** The one reply message for a call (or a call-monitor heartbeat with ending=false), and its `_unique_id`. */
export function buildReply(
  msgId: string,
  reply: { result?: unknown; failure?: string | null; ending?: boolean },
): { body: Buffer; uniqueId: string } {
  const uniqueId = uuidHex();
  const msg = {
    result: reply.result ?? null,
    failure: reply.failure ?? null,
    ending: reply.ending ?? true,
    _msg_id: msgId,
    _unique_id: uniqueId,
  };
  return { body: wrap(msg), uniqueId };
}

/** A cast: method, args, version, flattened context, unique id. */
export function buildCast(method: string, args: Record<string, unknown>, version: string, context: Record<string, unknown>): Buffer {
  const msg: Record<string, unknown> = { method, args, version, _unique_id: uuidHex() };
  for (const [k, v] of Object.entries(context)) msg[`_context_${k}`] = v;
  return wrap(msg);
}

/** A call (used by our own `guestagent call` and the benchmarks). */
export function buildCall(
  method: string,
  args: Record<string, unknown>,
  version: string,
  context: Record<string, unknown>,
  msgId: string,
  replyQ: string,
): Buffer {
  const msg: Record<string, unknown> = { method, args, version, _msg_id: msgId, _reply_q: replyQ, _timeout: null, _unique_id: uuidHex() };
  for (const [k, v] of Object.entries(context)) msg[`_context_${k}`] = v;
  return wrap(msg);
}

export interface IncomingReply {
  msgId: string | null;
  result: unknown;
  failure: string | null;
  ending: boolean;
}

export function parseReply(body: Buffer | string): IncomingReply {
  const outer = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as Record<string, unknown>;
  const msg = JSON.parse(String(outer['oslo.message'])) as Record<string, unknown>;
  return {
    msgId: typeof msg['_msg_id'] === 'string' ? msg['_msg_id'] : null,
    result: msg['result'] ?? null,
    failure: typeof msg['failure'] === 'string' ? msg['failure'] : null,
    ending: msg['ending'] === true,
  };
}

function wrap(msg: Record<string, unknown>): Buffer {
  return Buffer.from(pyJson({ 'oslo.version': OSLO_VERSION, 'oslo.message': pyJson(msg) }), 'utf8');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
