/**
 * Guest logs: the datastore's logs and the agent's own, listed and published
 * to Swift in the layout of Trove's guest agent (trove/guestagent/guest_log.py
 * and the log methods of trove/guestagent/datastore/manager.py), so
 * `trove log-list`, `log-show`, `log-enable`, `log-publish`, `log-discard`
 * and `log-save` work unchanged:
 *
 * - objects `<guest_id>/<manager>-<log>/log-<UTC time>` in the
 *   `guest_log_container_name` container, each at most `guest_log_limit`
 *   bytes and cut at line ends, with `X-Object-Meta-Lines` and
 *   `X-Delete-After: guest_log_expiry`;
 * - a JSON metafile `<guest_id>/<manager>-<log>_metafile` holding the
 *   published size and the MD5 of the file's first line, so a later publish
 *   sends only what is new, and a rotated file (shorter, or a new first
 *   line) replaces what was published.
 *
 * A log is shown only when `guest_log_exposed_logs` of the datastore's
 * section names it (or says `all`), or to an admin context.
 */
import { createHash } from 'node:crypto';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { SwiftClient } from './backup/swift-client.ts';
import type { LogCapability, LogDef, OpContext } from './datastore.ts';
import { AgentError, BadRequestError, GuestError, SwiftError } from './errors.ts';

/** Trove's LogAccessForbidden: the log is not exposed to this (non-admin) user. */
export class LogAccessForbiddenError extends AgentError {
  override readonly code = 'LOG_ACCESS_FORBIDDEN';
  override readonly troveClass = 'LogAccessForbidden';
}
/** Trove's NotFound for a log name no definition has. */
export class LogNotFoundError extends AgentError {
  override readonly code = 'NOT_FOUND';
  override readonly troveClass = 'NotFound';
}

type Status = 'Disabled' | 'Enabled' | 'Unavailable' | 'Ready' | 'Published' | 'Partial' | 'Rotated' | 'Restart Required';

/** What log-show prints (GuestLog.show()). */
export interface LogDetails {
  name: string;
  type: 'USER' | 'SYS';
  status: Status;
  published: number;
  pending: number;
  container: string;
  prefix: string;
  metafile: string;
}

export interface GuestLogOptions {
  guestId: string;
  manager: string;
  datastore: LogCapability | null;
  /** guest_log_exposed_logs of the datastore's section. */
  exposed: readonly string[];
  agentLogFile: string;
  container: string;
  limit: number;
  expirySec: number;
  log: Logger;
}

export interface LogRequest {
  /** Built on first use: listing a log that was never published needs no Swift. */
  swift: () => SwiftClient;
  isAdmin: boolean;
}

interface State {
  def: LogDef;
  enabled: boolean;
  status: Status;
  /** null until the metafile was read once. */
  publishedSize: number | null;
  publishedDigest: string | null;
}

export function createGuestLogService(o: GuestLogOptions) {
  const exposedNames = o.exposed.map((x) => x.toLowerCase());
  const exposeAll = exposedNames.includes('all');
  const defs: LogDef[] = [...(o.datastore?.defs() ?? []), { name: 'guest', type: 'SYS', file: o.agentLogFile }];
  const states = new Map<string, State>();

  const prefix = (name: string) => `${o.guestId}/${o.manager}-${name}/`;
  const metafile = (name: string) => `${prefix(name).replace(/\/$/, '')}_metafile`;
  const headers = () => ({ 'X-Delete-After': String(o.expirySec) });
  const exposed = (name: string, req: LogRequest) => exposeAll || exposedNames.includes(name) || req.isAdmin;

  async function state(def: LogDef): Promise<State> {
    let s = states.get(def.name);
    if (!s) {
      const enabled = def.type === 'SYS' ? true : ((await o.datastore?.isEnabled(def.name)) ?? false);
      s = { def, enabled, status: enabled ? 'Enabled' : 'Disabled', publishedSize: null, publishedDigest: null };
      states.set(def.name, s);
    }
    return s;
  }

  async function ensureContainer(swift: SwiftClient, signal: AbortSignal): Promise<void> {
    await swift.putContainer(o.container, { headers: headers(), signal });
  }

  /** Size and first-line digest of the file now, and the status they give. */
  async function refresh(s: State, req: LogRequest, signal: AbortSignal): Promise<{ size: number; digest: string }> {
    if (s.publishedSize === null) {
      try {
        const res = await req.swift().get(o.container, metafile(s.def.name), { signal });
        const chunks: Buffer[] = [];
        for await (const c of res.body) chunks.push(c as Buffer);
        const meta = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { log_size?: number; log_header_digest?: string };
        s.publishedSize = Number(meta.log_size ?? 0);
        s.publishedDigest = meta.log_header_digest ?? null;
      } catch (e) {
        if (!(e instanceof SwiftError && e.details.status === 404)) throw e;
        s.publishedSize = 0;
      }
    }
    if (!existsSync(s.def.file)) {
      o.log.warn({ file: s.def.file }, 'log file does not exist');
      s.publishedSize = 0;
      return { size: 0, digest: '' };
    }
    const size = statSync(s.def.file).size;
    const digest = createHash('md5').update(firstLine(s.def.file)).digest('hex');
    if (s.status !== 'Disabled' && s.status !== 'Restart Required') {
      const published = s.publishedSize;
      if (published > 0 && (size < published || s.publishedDigest !== digest)) s.status = 'Rotated';
      else if (size > published) s.status = published ? 'Partial' : 'Ready';
      else s.status = published ? 'Published' : 'Enabled';
    }
    return { size, digest };
  }

  async function show(s: State, req: LogRequest, signal: AbortSignal): Promise<LogDetails> {
    if (!exposed(s.def.name, req)) throw new LogAccessForbiddenError(`You must be admin to show log '${s.def.name}'.`);
    const { size } = await refresh(s, req, signal);
    const published = s.publishedSize ?? 0;
    return {
      name: s.def.name,
      type: s.def.type,
      status: s.status,
      published,
      pending: s.status === 'Rotated' ? size : size - published,
      container: published ? o.container : 'None',
      prefix: published ? prefix(s.def.name) : 'None',
      metafile: metafile(s.def.name),
    };
  }

  async function discard(s: State, req: LogRequest, signal: AbortSignal): Promise<void> {
    await ensureContainer(req.swift(), signal);
    for (const name of [...(await req.swift().list(o.container, { prefix: prefix(s.def.name), signal })), metafile(s.def.name)]) {
      await req.swift().delete(o.container, name, { ignoreMissing: true, signal });
    }
    s.publishedSize = 0;
  }

  async function putMeta(s: State, req: LogRequest, digest: string, signal: AbortSignal): Promise<void> {
    // Trove's JsonCodec: json.dumps with default separators.
    const body = `{"log_name": ${JSON.stringify(s.def.name)}, "log_type": "${s.def.type}", "log_file": ${JSON.stringify(s.def.file)}, "log_size": ${s.publishedSize ?? 0}, "log_header_digest": "${digest}"}`;
    await req.swift().putObject(o.container, metafile(s.def.name), Buffer.from(body), { headers: { ...headers(), 'Content-Type': 'application/json' }, signal });
  }

  async function publish(s: State, req: LogRequest, signal: AbortSignal): Promise<void> {
    let { size, digest } = await refresh(s, req, signal);
    if (s.status === 'Rotated') {
      o.log.info({ log: s.def.name }, 'log rotated since the last publish: discarding what was published');
      await discard(s, req, signal);
      ({ size, digest } = await refresh(s, req, signal));
    }
    if (!existsSync(s.def.file)) throw new GuestError(`Cannot publish log file '${s.def.file}' as it does not exist.`);
    await ensureContainer(req.swift(), signal);
    await putMeta(s, req, digest, signal);
    let offset = s.publishedSize ?? 0;
    const fd = openSync(s.def.file, 'r');
    try {
      while (offset < size) {
        const want = Math.min(o.limit, size - offset);
        const buf = Buffer.alloc(want);
        const got = readSync(fd, buf, 0, want, offset);
        if (got <= 0) break;
        // Cut at the last line end inside the chunk (a longer line goes whole).
        let take = got;
        const nl = buf.subarray(0, got).lastIndexOf(0x0a);
        if (offset + got < size && nl >= 0) take = nl + 1;
        const piece = buf.subarray(0, take);
        const lines = piece.reduce((n, b) => n + (b === 0x0a ? 1 : 0), 0) + (piece[piece.length - 1] === 0x0a ? 0 : 1);
        const name = `${prefix(s.def.name)}log-${pythonUtcNow()}`;
        await req.swift().putObject(o.container, name, Buffer.from(piece), { headers: { ...headers(), 'X-Object-Meta-Lines': String(lines) }, signal });
        offset += take;
        s.publishedSize = offset;
        s.publishedDigest = digest;
      }
    } finally {
      closeSync(fd);
    }
    await putMeta(s, req, digest, signal);
  }

  return {
    /** guest_log_list: the exposed logs' details. */
    async list(req: LogRequest, ctx: OpContext): Promise<LogDetails[]> {
      const out: LogDetails[] = [];
      for (const d of defs) if (exposed(d.name, req)) out.push(await show(await state(d), req, ctx.signal));
      return out;
    },

    /** guest_log_action, with the checks and order of Trove's manager. */
    async action(req: LogRequest, a: { name: string; enable: boolean; disable: boolean; publish: boolean; discard: boolean }, ctx: OpContext): Promise<LogDetails> {
      let { enable } = a;
      if (enable && a.disable) throw new BadRequestError(`Cannot enable and disable log '${a.name}'.`);
      if (a.publish && !a.disable) enable = true;
      const def = defs.find((d) => d.name === a.name);
      if (!def) throw new LogNotFoundError(`Log '${a.name}' is not defined.`);
      const s = await state(def);
      if (def.type === 'SYS' && !a.publish && (enable || a.disable)) {
        throw new BadRequestError(`Cannot ${enable ? 'enable' : 'disable'} a SYSTEM log ('${a.name}').`);
      }
      if (!exposed(def.name, req)) throw new LogAccessForbiddenError(`You must be admin to change log '${def.name}'.`);
      if (def.type === 'USER' && ((s.enabled && a.disable) || (!s.enabled && enable))) {
        const restart = await o.datastore!.setEnabled(def.name, enable, ctx);
        s.enabled = enable;
        s.status = enable ? (restart ? 'Restart Required' : 'Enabled') : 'Disabled';
        ctx.log.info({ log: def.name, enabled: enable, restart_required: restart }, 'guest log switched');
      }
      if (a.discard) await discard(s, req, ctx.signal);
      if (a.publish) {
        if (s.status === 'Restart Required' && !existsSync(def.file)) {
          throw new GuestError(`Log '${def.name}' is enabled but the database must restart before it writes anything.`);
        }
        await publish(s, req, ctx.signal);
      }
      return show(s, req, ctx.signal);
    },

    /** After the database restarted: logs waiting for it report their real status again. */
    restarted(): void {
      for (const s of states.values()) if (s.status === 'Restart Required') s.status = 'Enabled';
    },
  };
}

export type GuestLogService = ReturnType<typeof createGuestLogService>;

function firstLine(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(0x0a);
    return buf.subarray(0, nl >= 0 ? nl + 1 : n);
  } finally {
    closeSync(fd);
  }
}

/** Python's str(timeutils.utcnow()) with 'T': 2026-11-22T23:55:01.123456. */
function pythonUtcNow(): string {
  const d = new Date();
  const micro = String(d.getUTCMilliseconds() * 1000 + Math.floor(Math.random() * 1000)).padStart(6, '0');
  return `${d.toISOString().slice(0, 19)}.${micro}`;
}
