/**
 * A small OpenStack Swift client over node:http(s), for exactly what backups
 * need: a storage URL (`.../v1/AUTH_<project>`) and a token, either given
 * (the caller's, as Trove's backup tool takes them) or found on first use
 * through Keystone (`auth`), which is asked again when Swift refuses the token.
 * Bodies stream both ways; nothing is buffered beyond stream high-water marks.
 * The token only ever goes into the X-Auth-Token request header: it is not in
 * errors, logs or URLs.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { AbortedError, SwiftError } from '../errors.ts';

// node:http and node:https are loaded on the client's first request: it serves backups,
// restores and guest logs only (0.3-0.7 MiB of an idle agent's RSS, 3 alternating runs).
// Through require(): importing node:http as an ES module evaluates every export of its facade,
// among them the getters that load Node's bundled undici (~17 ms of the agent's start).
const builtin = createRequire(import.meta.url);
let httpModule: typeof import('node:http') | undefined;
let httpsModule: typeof import('node:https') | undefined;
const http = () => (httpModule ??= builtin('node:http') as typeof import('node:http'));
const https = () => (httpsModule ??= builtin('node:https') as typeof import('node:https'));

export interface SwiftCredentials {
  /** Storage URL, e.g. `https://swift.example:8080/v1/AUTH_<project>` (no trailing slash needed). */
  storageUrl: string;
  /** Keystone (or tempauth) token, sent as X-Auth-Token. */
  token: string;
}

/** Credentials looked up when a request needs them; `refresh` after Swift answered 401. */
export type SwiftAuth = (opts: { refresh: boolean; signal?: AbortSignal | undefined }) => Promise<SwiftCredentials>;

export type SwiftConnection = SwiftOptions & (SwiftCredentials | { auth: SwiftAuth });

export interface SwiftOptions {
  /** HTTP(S) agent to reuse sockets; default: a keep-alive agent per client. */
  agent?: HttpAgent | undefined;
  /** Socket idle timeout per request in ms. Default 120000. */
  idleTimeoutMs?: number | undefined;
  /**
   * Retries of a request whose body can be sent again after a 5xx or a
   * transport error, as python-swiftclient does (its default: 5, backing off
   * from 1 s, doubling). Default 5. A streamed upload is tried again only when
   * it failed before Swift took any of its body (it waits for `100 Continue`).
   */
  retries?: number | undefined;
  /** First back-off in ms (doubles, at most 64 s). Default 1000. */
  retryDelayMs?: number | undefined;
  /** Told before each new try of a request (a GET's take-up has its own `onResume`): which, when, why. */
  onRetry?: ((r: { method: string; path: string; attempt: number; of: number; waitMs: number; reason: string }) => void) | undefined;
}

/** One SLO manifest entry, in the key order Trove writes them. */
export interface SloSegment {
  /** `<container>/<object>`, without a leading slash. */
  path: string;
  /** md5 hex of the segment. */
  etag: string;
  size_bytes: number;
}

/** A stored run of an object's bytes and the md5 (hex) Swift keeps for it. */
export interface StoredPart {
  bytes: number;
  etag: string;
}

/**
 * Checks bytes as they pass against the md5s of the parts they are made of, part by part, so a
 * part that differs is known as soon as it has passed (and the bytes after it are not needed).
 */
export class PartsVerifier {
  readonly #parts: readonly StoredPart[];
  #index = 0;
  #left: number;
  #hash: Hash | null;
  #failure: string | null = null;

  constructor(parts: readonly StoredPart[]) {
    this.#parts = parts;
    this.#left = parts[0]?.bytes ?? 0;
    this.#hash = parts.length > 0 ? createHash('md5') : null;
  }

  /** Takes the next bytes; returns why they do not match (once, then null: stop feeding). */
  update(chunk: Buffer): string | null {
    if (this.#failure) return null;
    let at = 0;
    while (at < chunk.length) {
      if (!this.#hash) return this.#fail(`${chunk.length - at} bytes more than the ${this.#describe()} hold`);
      const n = Math.min(this.#left, chunk.length - at);
      this.#hash.update(n === chunk.length ? chunk : chunk.subarray(at, at + n));
      at += n;
      this.#left -= n;
      if (this.#left === 0) {
        const why = this.#close();
        if (why) return why;
      }
    }
    return null;
  }

  /** At the end of the bytes: why they are not every part whole, or null. */
  end(): string | null {
    if (this.#failure) return null;
    // Parts of no bytes still have their md5 (of nothing) to match.
    while (this.#hash && this.#left === 0) {
      const why = this.#close();
      if (why) return why;
    }
    if (this.#hash) return this.#fail(`the bytes end ${this.#left} bytes before the end of ${this.#name(this.#index)}`);
    return null;
  }

  #close(): string | null {
    const part = this.#parts[this.#index]!;
    const md5 = this.#hash!.digest('hex');
    if (md5 !== part.etag) return this.#fail(`${this.#name(this.#index)} (${part.bytes} bytes) has md5 ${md5}, Swift holds ${part.etag} for it`);
    this.#index++;
    const next = this.#parts[this.#index];
    this.#hash = next ? createHash('md5') : null;
    this.#left = next?.bytes ?? 0;
    return null;
  }

  /** The part the byte at `offset` belongs to, named as in the failures ('segment 2 of 3'), or null past the end. */
  partAt(offset: number): string | null {
    let end = 0;
    for (let i = 0; i < this.#parts.length; i++) {
      end += this.#parts[i]!.bytes;
      if (offset < end) return this.#name(i);
    }
    return null;
  }

  #name(i: number): string {
    return this.#parts.length === 1 ? 'the object' : `segment ${i + 1} of ${this.#parts.length}`;
  }

  #describe(): string {
    return this.#parts.length === 1 ? 'object' : `${this.#parts.length} segments`;
  }

  #fail(why: string): string {
    this.#failure = why;
    return why;
  }
}

export interface ObjectInfo {
  /** ETag with surrounding quotes removed (SLO manifests quote theirs). */
  etag: string;
  contentLength: number;
  /** Response headers, lower-cased names (e.g. `x-object-meta-datastore`). */
  headers: IncomingHttpHeaders;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** Extra request headers (e.g. X-Object-Meta-*). */
  headers?: Record<string, string> | undefined;
}

export interface GetOptions extends RequestOptions {
  /** Told before each ranged GET that takes up a body cut short: the bytes so far and why it stopped. */
  onResume?: ((offset: number, err: Error) => void) | undefined;
}

/** The Swift operations backups use; tests of upper layers fake only what they call. */
export interface SwiftClient {
  /** The storage URL requests go to (looked up first when the client has `auth`). */
  storageUrl(opts?: { signal?: AbortSignal | undefined }): Promise<string>;
  /** PUT /<container>: 201 created, 202 already there. */
  putContainer(container: string, opts?: RequestOptions): Promise<void>;
  /**
   * Streamed PUT (chunked, `Expect: 100-continue`): tried again, as other requests are, when
   * Swift refuses it or the connection fails before the body is sent; once the body flows, a
   * failure is final (its bytes are gone). Resolves with the server's ETag (md5 hex).
   */
  putObject(container: string, name: string, body: Readable | Buffer, opts?: RequestOptions): Promise<{ etag: string }>;
  /** Server-side copy: PUT with X-Copy-From and an empty body. */
  copyObject(container: string, name: string, from: { container: string; name: string }, opts?: RequestOptions): Promise<{ etag: string }>;
  /** POST /<container>/<name>: sets the object's metadata (X-Object-Meta-*: all of it, replacing what was there). */
  postObject(container: string, name: string, opts?: RequestOptions): Promise<void>;
  /** SLO manifest: PUT ?multipart-manifest=put with Trove's JSON body. Resolves with the SLO ETag (unquoted). */
  putManifest(container: string, name: string, segments: readonly SloSegment[], opts?: RequestOptions): Promise<{ etag: string }>;
  head(container: string, name: string, opts?: RequestOptions): Promise<ObjectInfo>;
  /**
   * Streamed GET; the caller must consume or destroy `body`. A body cut short (a reset
   * connection, a proxy failing mid-way) is taken up where it stopped by a ranged GET of the
   * same object, its ETag and length checked, as long as each try brings bytes, at most
   * `retries` times, backing off as requests do.
   */
  get(container: string, name: string, opts?: GetOptions): Promise<ObjectInfo & { body: Readable }>;
  /**
   * What the body of a GET of the object (`info`: its HEAD or GET) is made of, each part with
   * the md5 Swift keeps for it: the object itself, or a static large object's segments in order
   * (from its manifest). null where the parts' md5s do not cover the bytes: a dynamic large
   * object, nested manifests, ranged segments, a response without its length.
   */
  parts(container: string, name: string, info: ObjectInfo, opts?: RequestOptions): Promise<StoredPart[] | null>;
  /** Names of the objects in a container that start with `prefix`, every page of the listing. */
  list(container: string, opts?: RequestOptions & { prefix?: string }): Promise<string[]>;
  /** DELETE; `ignoreMissing` turns 404 into success. */
  delete(container: string, name: string, opts?: RequestOptions & { ignoreMissing?: boolean }): Promise<void>;
}

/** How long a streamed PUT waits for Swift's `100 Continue` before it sends its body anyway. */
const CONTINUE_WAIT_MS = 1000;

/** Failures of streamed requests that came before any of the body was sent: they may be tried again. */
const unsent = new WeakSet<object>();

/** The wait before try `attempt` + 2, as python-swiftclient backs off: from `firstMs`, doubling, at most 64 s. */
const backOffMs = (firstMs: number, attempt: number): number => Math.min(64_000, firstMs * 2 ** attempt);

function backOff(firstMs: number, attempt: number, signal: AbortSignal | undefined, what: string, cause: unknown): Promise<void> {
  return sleep(backOffMs(firstMs, attempt), undefined, { signal }).catch(() => {
    throw new AbortedError(`aborted: Swift ${what}`, { cause });
  });
}

interface ResumeOptions {
  retries: number;
  retryDelayMs: number;
  signal?: AbortSignal | undefined;
  onResume?: ((offset: number, err: Error) => void) | undefined;
}

/**
 * The bytes of a GET, from the first response and then from ranged ones where a response
 * stopped before `total`: only while each try brings bytes (a cut at the same place every
 * time, such as a segment Swift refuses to serve, fails at once), at most `retries` times.
 * Each response's chunks are pushed on as they come (no stream stage of its own: an async
 * generator here cost 5-15% more of the agent's CPU on a 1.5 GB restore).
 */
class ResumingBody extends Readable {
  #res: IncomingMessage;
  #offset = 0;
  #from = 0;
  #resumed = 0;
  readonly #total: number;
  readonly #reopen: (offset: number) => Promise<IncomingMessage>;
  readonly #o: ResumeOptions;

  constructor(first: IncomingMessage, total: number, reopen: (offset: number) => Promise<IncomingMessage>, o: ResumeOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.#total = total;
    this.#reopen = reopen;
    this.#o = o;
    this.#res = first;
    this.#attach(first);
  }

  override _read(): void {
    this.#res.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#res.destroy();
    cb(err);
  }

  #attach(res: IncomingMessage): void {
    let over = false;
    const stop = (cut: Error | null) => {
      if (over) return;
      over = true;
      res.off('data', onData);
      if (this.destroyed) return;
      if (this.#offset >= this.#total) {
        this.push(null);
        return;
      }
      void this.#takeUp(cut ?? new Error(`the response ended after ${this.#offset} of ${this.#total} bytes`));
    };
    const onData = (chunk: Buffer) => {
      this.#offset += chunk.length;
      if (!this.push(chunk)) res.pause();
    };
    res.on('data', onData);
    res.once('end', () => stop(null));
    res.once('error', (e: Error) => stop(e));
    res.once('close', () => stop(res.complete ? null : new Error('the connection closed before the end of the response')));
  }

  async #takeUp(err: Error): Promise<void> {
    const o = this.#o;
    const brought = this.#offset - this.#from;
    try {
      if (o.signal?.aborted) throw new AbortedError('aborted: Swift GET', { cause: err });
      if (brought === 0 || this.#resumed >= o.retries) {
        throw new Error(this.#resumed === 0 ? err.message : `${err.message} (taken up ${this.#resumed} times; the last try brought ${brought} bytes)`, { cause: err });
      }
      o.onResume?.(this.#offset, err);
      await backOff(o.retryDelayMs, this.#resumed, o.signal, 'GET', err);
      this.#resumed++;
      this.#from = this.#offset;
      const res = await this.#reopen(this.#offset);
      if (this.destroyed) {
        res.destroy();
        return;
      }
      this.#res = res;
      this.#attach(res);
    } catch (e) {
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

/** Trove's `json.dumps` of the manifest list: default separators `", "` and `": "`. */
export function manifestJson(segments: readonly SloSegment[]): string {
  return `[${segments
    .map((s) => `{"path": ${JSON.stringify(s.path)}, "etag": ${JSON.stringify(s.etag)}, "size_bytes": ${s.size_bytes}}`)
    .join(', ')}]`;
}

function objectPath(container: string, name?: string): string {
  const c = encodeURIComponent(container);
  if (name === undefined) return `/${c}`;
  // Object names may contain '/', which Swift keeps as part of the name.
  return `/${c}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

interface Endpoint {
  base: URL;
  isHttps: boolean;
  token: string;
}

function endpoint(c: SwiftCredentials): Endpoint {
  const base = new URL(c.storageUrl.replace(/\/+$/, ''));
  const isHttps = base.protocol === 'https:';
  if (!isHttps && base.protocol !== 'http:') throw new SwiftError(`unsupported storage URL scheme ${base.protocol}`, { method: '-', path: '-' });
  return { base, isHttps, token: c.token };
}

export function createSwiftClient(conn: SwiftConnection): SwiftClient {
  const auth = 'auth' in conn ? conn.auth : null;
  // Static credentials are checked at once; looked-up ones at first use.
  let current: Endpoint | Promise<Endpoint> | null = auth ? null : endpoint(conn as SwiftCredentials);
  const resolve = async (refresh: boolean, signal?: AbortSignal): Promise<Endpoint> => {
    if (!auth) return current as Endpoint;
    if (refresh || current === null) {
      const p = auth({ refresh, signal }).then(endpoint);
      current = p;
      p.catch(() => {
        if (current === p) current = null;
      });
    }
    return current;
  };
  const agents: { http?: HttpAgent; https?: HttpsAgent } = {};
  const agentFor = (isHttps: boolean): HttpAgent => conn.agent ?? (isHttps ? (agents.https ??= new (https().Agent)({ keepAlive: true })) : (agents.http ??= new (http().Agent)({ keepAlive: true })));
  const idleTimeoutMs = conn.idleTimeoutMs ?? 120_000;

  interface Call {
    method: string;
    path: string;
    query?: string;
    headers?: OutgoingHttpHeaders;
    body?: Readable | Buffer;
    signal?: AbortSignal | undefined;
    ok: readonly number[];
    /** Keep the response body streaming instead of draining it. */
    stream?: boolean;
  }

  const retries = conn.retries ?? 5;
  const retryDelayMs = conn.retryDelayMs ?? 1000;

  /**
   * One request, tried again after a retryable failure when its body can be
   * replayed; with looked-up credentials, a 401 asks for new ones once.
   */
  async function call(c: Call): Promise<IncomingMessage> {
    const buffered = c.body === undefined || Buffer.isBuffer(c.body);
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await attemptCall(c, await resolve(false, c.signal));
      } catch (e) {
        // A streamed body can go again when Swift answered, or the connection failed, before any of it was sent.
        const replayable = buffered || unsent.has(e as object);
        if (auth && replayable && !refreshed && e instanceof SwiftError && e.details.status === 401 && !c.signal?.aborted) {
          refreshed = true;
          await resolve(true, c.signal);
          attempt--;
          continue;
        }
        if (!replayable || attempt >= retries || !(e instanceof SwiftError) || !e.retryable || c.signal?.aborted) {
          // A body never sent is ended here, as one that was is by its pipe: its writer must not wait on it.
          if (c.body instanceof Readable && !c.body.destroyed) c.body.destroy();
          throw e;
        }
        conn.onRetry?.({ method: c.method, path: c.path, attempt: attempt + 2, of: retries + 1, waitMs: backOffMs(retryDelayMs, attempt), reason: e.message });
        await backOff(retryDelayMs, attempt, c.signal, `${c.method} ${c.path}`, e);
      }
    }
  }

  function attemptCall(c: Call, { base, isHttps, token }: Endpoint): Promise<IncomingMessage> {
    const what = `${c.method} ${c.path}`;
    if (c.signal?.aborted) return Promise.reject(new AbortedError(`aborted: Swift ${what}`));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { 'X-Auth-Token': token, ...c.headers };
      const streamed = c.body !== undefined && !Buffer.isBuffer(c.body) ? c.body : null;
      if (c.body === undefined) headers['Content-Length'] = '0';
      else if (Buffer.isBuffer(c.body)) headers['Content-Length'] = String(c.body.length);
      else {
        headers['Transfer-Encoding'] = 'chunked';
        // Swift's proxy answers 100 once it has the object servers it needs, or refuses (503, 507,
        // 401) before taking a byte: the body then is still whole, and the PUT can be tried again.
        headers['Expect'] = '100-continue';
      }
      const doRequest = isHttps ? https().request : http().request;
      let settled = false;
      let sending = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        if (streamed && !sending) unsent.add(e);
        reject(e);
      };
      const req = doRequest(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          path: `${base.pathname}${c.path}${c.query ? `?${c.query}` : ''}`,
          method: c.method,
          headers,
          agent: agentFor(isHttps),
          signal: c.signal,
          timeout: idleTimeoutMs,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (c.ok.includes(status)) {
            if (!c.stream) res.resume();
            settled = true;
            resolve(res);
            return;
          }
          // Keep a short error body for the message (Swift's bodies are short text like "Etag Mismatch").
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (text.length < 500) text += d;
          });
          res.on('end', () => {
            // Stop sending a body the server has already refused.
            req.destroy();
            fail(new SwiftError(`Swift ${what} answered ${status}${text.trim() ? `: ${text.trim().slice(0, 300)}` : ''}`, { method: c.method, path: c.path, status }));
          });
          res.on('error', (e) => fail(new SwiftError(`Swift ${what} answered ${status}`, { method: c.method, path: c.path, status }, { cause: e })));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no activity for ${idleTimeoutMs} ms`)));
      req.on('error', (e) => {
        if (c.signal?.aborted) fail(new AbortedError(`aborted: Swift ${what}`, { cause: e }));
        else fail(new SwiftError(`Swift ${what} failed: ${e.message}`, { method: c.method, path: c.path }, { cause: e }));
      });
      if (c.body === undefined) req.end();
      else if (Buffer.isBuffer(c.body)) req.end(c.body);
      else {
        const body = c.body;
        const send = (): void => {
          clearTimeout(waiting);
          if (sending || settled) return;
          sending = true;
          // A failing body (upstream error, abort) must abort the request so
          // Swift never commits a truncated object.
          pipeline(body, req).catch((e: unknown) => {
            req.destroy(e instanceof Error ? e : new Error(String(e)));
            fail(c.signal?.aborted ? new AbortedError(`aborted: Swift ${what}`) : new SwiftError(`Swift ${what}: body failed: ${(e as Error).message}`, { method: c.method, path: c.path }, { cause: e }));
          });
        };
        // A server (or a proxy in front of Swift) that never answers 100 gets the body after a second, as curl does.
        const waiting = setTimeout(send, CONTINUE_WAIT_MS);
        req.once('continue', send);
        req.once('response', () => clearTimeout(waiting));
        req.once('close', () => clearTimeout(waiting));
        req.flushHeaders();
      }
    });
  }

  const info = (res: IncomingMessage): ObjectInfo => ({
    etag: unquote(res.headers.etag),
    contentLength: Number(res.headers['content-length'] ?? 0),
    headers: res.headers,
  });

  return {
    async storageUrl(opts = {}) {
      return (await resolve(false, opts.signal)).base.toString().replace(/\/+$/, '');
    },
    async putContainer(container, opts = {}) {
      await call({ method: 'PUT', path: objectPath(container), headers: opts.headers, signal: opts.signal, ok: [201, 202] });
    },
    async putObject(container, name, body, opts = {}) {
      const res = await call({ method: 'PUT', path: objectPath(container, name), headers: opts.headers, body, signal: opts.signal, ok: [201] });
      return { etag: unquote(res.headers.etag) };
    },
    async copyObject(container, name, from, opts = {}) {
      const res = await call({
        method: 'PUT',
        path: objectPath(container, name),
        headers: { ...opts.headers, 'X-Copy-From': objectPath(from.container, from.name).slice(1) },
        signal: opts.signal,
        ok: [201],
      });
      return { etag: unquote(res.headers.etag) };
    },
    async postObject(container, name, opts = {}) {
      await call({ method: 'POST', path: objectPath(container, name), headers: opts.headers, signal: opts.signal, ok: [202] });
    },
    async putManifest(container, name, segments, opts = {}) {
      const res = await call({
        method: 'PUT',
        path: objectPath(container, name),
        query: 'multipart-manifest=put',
        headers: { ...opts.headers, 'Content-Type': 'application/json' },
        body: Buffer.from(manifestJson(segments)),
        signal: opts.signal,
        ok: [201],
      });
      return { etag: unquote(res.headers.etag) };
    },
    async head(container, name, opts = {}) {
      return info(await call({ method: 'HEAD', path: objectPath(container, name), headers: opts.headers, signal: opts.signal, ok: [200, 204] }));
    },
    async get(container, name, opts = {}) {
      const path = objectPath(container, name);
      const res = await call({ method: 'GET', path, headers: opts.headers, signal: opts.signal, ok: [200], stream: true });
      const head = info(res);
      // Without a length a cut cannot be told from the end.
      if (res.headers['content-length'] === undefined) return { ...head, body: res };
      const total = head.contentLength;
      const reopen = async (offset: number): Promise<IncomingMessage> => {
        const part = await call({ method: 'GET', path, headers: { ...opts.headers, Range: `bytes=${offset}-` }, signal: opts.signal, ok: [206], stream: true });
        const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(String(part.headers['content-range'] ?? ''));
        if (unquote(part.headers.etag) !== head.etag || Number(range?.[1]) !== offset || Number(range?.[2]) !== total) {
          part.destroy();
          throw new SwiftError(`Swift GET ${path}: the object changed while it was read (ETag or length differ)`, { method: 'GET', path });
        }
        return part;
      };
      const body = new ResumingBody(res, total, reopen, { retries, retryDelayMs, signal: opts.signal, onResume: opts.onResume });
      return { ...head, body };
    },
    async parts(container, name, head, opts = {}) {
      // Without its length the object's bytes cannot be told from more of them.
      if (head.headers['x-object-manifest'] !== undefined || head.headers['content-length'] === undefined) return null;
      if (String(head.headers['x-static-large-object'] ?? '').toLowerCase() !== 'true') return [{ bytes: head.contentLength, etag: head.etag }];
      const res = await call({ method: 'GET', path: objectPath(container, name), query: 'multipart-manifest=get', headers: opts.headers, signal: opts.signal, ok: [200], stream: true });
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const entries = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ hash?: unknown; bytes?: unknown; sub_slo?: unknown; range?: unknown }>;
      // A nested manifest's hash is of its segments' md5s, a ranged segment's of the whole segment: not of these bytes.
      if (!Array.isArray(entries) || entries.some((e) => e.sub_slo || e.range !== undefined || typeof e.hash !== 'string' || typeof e.bytes !== 'number')) return null;
      return entries.map((e) => ({ bytes: e.bytes as number, etag: e.hash as string }));
    },
    async list(container, opts = {}) {
      const names: string[] = [];
      let marker = '';
      for (;;) {
        const query = new URLSearchParams({ format: 'json', ...(opts.prefix ? { prefix: opts.prefix } : {}), ...(marker ? { marker } : {}) }).toString();
        const res = await call({ method: 'GET', path: objectPath(container), query, headers: opts.headers, signal: opts.signal, ok: [200, 204], stream: true });
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        const page = text ? (JSON.parse(text) as Array<{ name: string }>) : [];
        if (page.length === 0) return names;
        names.push(...page.map((o) => o.name));
        marker = page[page.length - 1]!.name;
      }
    },
    async delete(container, name, opts = {}) {
      await call({ method: 'DELETE', path: objectPath(container, name), headers: opts.headers, signal: opts.signal, ok: opts.ignoreMissing ? [200, 204, 404] : [200, 204] });
    },
  };
}
