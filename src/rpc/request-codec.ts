/**
 * Trove's SecureSerializer as the agent's RPC server applies it
 * (trove/common/rpc/secure_serializer.py): with an instance key the context
 * arrives as one encrypted `_context_context` entry and every argument value
 * is encrypted on its own; the result goes back encrypted. Without a key
 * everything is plain.
 *
 * One deliberate difference: Trove returns a value it cannot decrypt as it
 * is and runs the method anyway. We refuse the request instead, so a
 * message not sealed with this instance's key never executes.
 */
import { RemoteKeyError, UndecryptableError } from '../errors.ts';
import { DecryptError, type SecureCodec } from './secure-codec.ts';

export interface RequestCodec {
  readonly encrypted: boolean;
  /** The caller's context dict from the `_context_*` entries. */
  context(entries: Record<string, unknown>): Record<string, unknown>;
  arg(name: string, value: unknown): unknown;
  result(value: unknown): unknown;
}

export function createRequestCodec(codec: SecureCodec | null): RequestCodec {
  if (!codec) {
    return { encrypted: false, context: (e) => e, arg: (_n, v) => v, result: (v) => v };
  }
  return {
    encrypted: true,
    context(entries) {
      // Trove reads ctxt['context']: a plain request fails with KeyError('context').
      if (!('context' in entries)) throw new RemoteKeyError('context');
      let ctx: unknown;
      try {
        ctx = codec.decrypt(entries['context']);
      } catch (e) {
        if (e instanceof DecryptError) throw new UndecryptableError('The request context is not sealed with this instance\'s key', { cause: e });
        throw e;
      }
      if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx)) {
        throw new UndecryptableError('The request context is not a dictionary');
      }
      return ctx as Record<string, unknown>;
    },
    arg(name, value) {
      try {
        return codec.decrypt(value);
      } catch (e) {
        if (e instanceof DecryptError) throw new UndecryptableError(`Argument '${name}' is not sealed with this instance's key`, { cause: e });
        throw e;
      }
    },
    result: (v) => codec.encrypt(v),
  };
}
