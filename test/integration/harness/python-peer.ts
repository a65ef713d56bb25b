/**
 * The real Python Trove code as the agent's peer: test/peer/caller.py (Trove's
 * guest API client) and test/peer/conductor.py (Trove's host-side conductor
 * serializer), driven over JSON lines. Keys travel in the environment, never
 * on argv.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PYTHON = '/usr/bin/python3';
const PEER_DIR = fileURLToPath(new URL('../../peer/', import.meta.url));

export interface PeerError {
  class: string;
  module: string;
  message: string;
  remote_class: string;
  remote_module: string;
  remote_message: string;
}
export type PeerResult = { ok: true; result: unknown } | { ok: false; error: PeerError };

export interface PeerOptions {
  url: string;
  guestId: string;
  key: string | null;
  exchange?: string;
  /** Extra [DEFAULT]/[oslo_messaging_rabbit] lines for the peer's config (e.g. amqp_durable_queues). */
  extraConf?: string;
}

function checkPython(): void {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} missing: apt-get install -y python3-trove python3-oslo.messaging`);
}

function env(o: PeerOptions, extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    PEER_TRANSPORT_URL: o.url.replace(/^amqp:/, 'rabbit:'),
    PEER_GUEST_ID: o.guestId,
    PEER_CONTROL_EXCHANGE: o.exchange ?? 'trove',
    PEER_EXTRA_CONF: o.extraConf ?? '',
    PYTHONWARNINGS: 'ignore',
    ...extra,
  };
  if (o.key) e['PEER_INSTANCE_KEY'] = o.key;
  return e;
}

/** Reads JSON lines from a child; resolves `ready` on its first {"ready": true}. */
function lines(child: ChildProcess, onLine: (o: Record<string, unknown>) => void): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(l) as Record<string, unknown>;
      } catch {
        return;
      }
      if (o['ready']) resolve();
      else onLine(o);
    });
    child.once('exit', (code) => reject(new Error(`python peer exited (${code}) before it was ready:\n${stderr}`)));
  });
}

/** Closes the peer's stdin (it exits when its input ends), killing it after 5 s. */
function endChild(child: ChildProcess): Promise<void> {
  child.stdin!.end();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export class PythonCaller {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (r: PeerResult) => void>();
  #next = 1;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static async start(o: PeerOptions): Promise<PythonCaller> {
    checkPython();
    const child = spawn(PYTHON, [PEER_DIR + 'caller.py'], { env: env(o, {}), stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new PythonCaller(child);
    await lines(child, (m) => {
      const { id, ...rest } = m;
      const done = c.#pending.get(id as number);
      c.#pending.delete(id as number);
      done?.(rest as unknown as PeerResult);
    });
    return c;
  }

  #send(req: Record<string, unknown>): Promise<PeerResult> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin!.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  /** Calls trove.guestagent.api.API.<method>(**kwargs), as Trove's API/taskmanager do. */
  api(
    method: string,
    kwargs: Record<string, unknown> = {},
    o: { timeout?: number; notification?: boolean; context?: Record<string, unknown> } = {},
  ): Promise<PeerResult> {
    return this.#send({ method, kwargs, timeout: o.timeout ?? null, notification: o.notification ?? false, context: o.context ?? null });
  }

  /** Uses Trove's RPC client directly: any method, any version, call or cast, call monitor. */
  raw(
    method: string,
    kwargs: Record<string, unknown> = {},
    o: { version?: string; call?: boolean; timeout?: number; callMonitorTimeout?: number; notification?: boolean } = {},
  ): Promise<PeerResult> {
    return this.#send({
      raw: true, method, kwargs, version: o.version ?? '1.0', call: o.call ?? true, timeout: o.timeout ?? null,
      call_monitor_timeout: o.callMonitorTimeout ?? null, notification: o.notification ?? false,
    });
  }

  close(): Promise<void> {
    return endChild(this.#child);
  }
}

/** The result of a call through Trove's caller; a remote error throws with Trove's class and message. */
export function resultOf(r: PeerResult): unknown {
  if (!r.ok) throw new Error(`remote error ${r.error.remote_class}: ${r.error.remote_message} (${JSON.stringify(r.error)})`);
  return r.result;
}

export interface ConductorCast {
  method: string;
  received: number;
  kwargs: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** The service_status of a heartbeat cast, as conductor reads it. */
export function serviceStatus(c: ConductorCast): string | undefined {
  return (c.kwargs['payload'] as { service_status?: string } | undefined)?.service_status;
}

export class PythonConductor {
  readonly #child: ChildProcess;
  readonly received: ConductorCast[] = [];
  #waiters: Array<{ pred: (c: ConductorCast) => boolean; resolve: (c: ConductorCast) => void }> = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static async start(o: { url: string; keys: Record<string, string>; exchange?: string; queue?: string; extraConf?: string }): Promise<PythonConductor> {
    checkPython();
    const child = spawn(PYTHON, [PEER_DIR + 'conductor.py'], {
      env: env({ url: o.url, guestId: '-', key: null, exchange: o.exchange, extraConf: o.extraConf }, {
        PEER_INSTANCE_KEYS: JSON.stringify(o.keys),
        PEER_CONDUCTOR_QUEUE: o.queue ?? 'trove-conductor',
      }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const c = new PythonConductor(child);
    await lines(child, (m) => {
      const cast = m as unknown as ConductorCast;
      c.received.push(cast);
      c.#waiters = c.#waiters.filter((w) => {
        if (!w.pred(cast)) return true;
        w.resolve(cast);
        return false;
      });
    });
    return c;
  }

  /** The first cast (already received or coming) that matches, or a timeout error. */
  waitFor(pred: (c: ConductorCast) => boolean, timeoutMs = 20_000, since = 0): Promise<ConductorCast> {
    const seen = this.received.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching cast at conductor within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((r) => [r.method, r.kwargs['payload']]))}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (c) => (clearTimeout(t), resolve(c)) });
    });
  }

  /**
   * The instance's first heartbeat after `since` that ends its prepare: healthy, or a 'failed to
   * spawn' that fails at once with `why()` (the agent's own account), not a timeout minutes later.
   */
  async waitHealthy(instanceId: string, timeoutMs: number, why: () => string, since = 0): Promise<void> {
    const end = await this.waitFor((c) => c.kwargs['instance_id'] === instanceId && ['healthy', 'failed to spawn'].includes(serviceStatus(c) ?? ''), timeoutMs, since);
    if (serviceStatus(end) !== 'healthy') throw new Error(`instance ${instanceId}: prepare ended ${serviceStatus(end)}; the agent logged:\n${why()}`);
  }

  close(): Promise<void> {
    return endChild(this.#child);
  }
}
