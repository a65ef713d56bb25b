/**
 * oslo.messaging's RPCDispatcher for one endpoint (oslo_messaging/rpc/dispatcher.py):
 * namespace and version compatibility first (UnsupportedVersion), then the
 * method (NoSuchMethod; names starting with '_' are never exposed), then the
 * context and arguments are decoded, then the call. Arguments are checked
 * against the Python method's signature so a caller sees the TypeError Python
 * would raise. The method table comes from src/handlers; this module knows
 * nothing of datastores.
 */
import { ArgumentTypeError, ArgumentValueError, NoSuchMethodError, UnsupportedVersionError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { IncomingRequest } from './envelope.ts';
import type { RequestCodec } from './request-codec.ts';

export interface CallContext {
  method: string;
  /** The caller's decoded request context (TroveContext.to_dict()). */
  request: Readonly<Record<string, unknown>>;
  log: Logger;
  /** Aborted when the agent shuts down. */
  signal: AbortSignal;
}

export interface MethodSpec {
  /** The Python endpoint's parameters after `context`, in order; `required` ones have no default. */
  params: ReadonlyArray<{ name: string; required?: boolean }>;
  /** Accepts any other keyword (Python **kwargs). */
  extraKwargs?: boolean;
  handler(args: Record<string, unknown>, ctx: CallContext): Promise<unknown>;
}

export type MethodTable = ReadonlyMap<string, MethodSpec>;

/** oslo's utils.version_is_compatible(imp_version, version). */
export function versionIsCompatible(implemented: string, requested: string): boolean {
  const parse = (v: string): [number, number, number] => {
    const p = v.split('.');
    const n = p.map((x) => {
      if (!/^\d+$/.test(x)) throw new ArgumentValueError(`invalid literal for int() with base 10: '${x}'`);
      return Number(x);
    });
    return [n[0] ?? 0, n[1] ?? 0, n[2] ?? 0];
  };
  const [iMaj, iMin, iRev] = parse(implemented);
  const [maj, min, rev] = parse(requested);
  if (maj !== iMaj) return false;
  if (min > iMin) return false;
  if (min === iMin && rev > iRev) return false;
  return true;
}

export interface DispatcherOptions {
  methods: MethodTable;
  /** The newest guest API version implemented (Trove 18: '1.1'). */
  version: string;
  log: Logger;
}

export class Dispatcher {
  readonly #o: DispatcherOptions;
  constructor(o: DispatcherOptions) {
    this.#o = o;
  }

  get version(): string {
    return this.#o.version;
  }

  /** Runs one request to completion; throws the error to be serialized as the failure. */
  async dispatch(req: IncomingRequest, codec: RequestCodec, signal: AbortSignal): Promise<unknown> {
    if (req.namespace !== null || !versionIsCompatible(this.#o.version, req.version)) {
      throw new UnsupportedVersionError(req.version, req.method);
    }
    const spec = req.method.startsWith('_') ? undefined : this.#o.methods.get(req.method);
    if (!spec) throw new NoSuchMethodError(req.method);
    const request = codec.context(req.context);
    const args: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(req.args)) args[name] = codec.arg(name, value);
    checkSignature(req.method, spec, args);
    const requestId = typeof request['request_id'] === 'string' ? request['request_id'] : undefined;
    // The per-call child logger is made on first use: pino children with
    // redaction are costly, and most calls (rpc_ping) never log.
    const parent = this.#o.log;
    let log: Logger | null = null;
    const ctx: CallContext = {
      method: req.method,
      request,
      signal,
      get log() {
        log ??= parent.child({ method: req.method, msg_id: req.msgId ?? undefined, request_id: requestId });
        return log;
      },
    };
    const result = await spec.handler(args, ctx);
    return codec.result(result === undefined ? null : result);
  }
}

function checkSignature(method: string, spec: MethodSpec, args: Record<string, unknown>): void {
  const known = new Set(spec.params.map((p) => p.name));
  if (!spec.extraKwargs) {
    for (const name of Object.keys(args)) {
      if (!known.has(name)) throw new ArgumentTypeError(`${method}() got an unexpected keyword argument '${name}'`);
    }
  }
  const missing = spec.params.filter((p) => p.required && !(p.name in args)).map((p) => `'${p.name}'`);
  if (missing.length > 0) {
    const list = missing.length === 1 ? missing[0]! : `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)!}`;
    throw new ArgumentTypeError(
      `${method}() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${list}`,
    );
  }
}
