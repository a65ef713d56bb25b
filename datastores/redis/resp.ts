/**
 * A minimal RESP2 client over a unix socket or TCP: commands as arrays of
 * bulk strings (so no value is ever parsed as syntax), replies decoded into
 * strings, numbers, arrays, null, or a RedisError. Enough for the admin
 * commands the datastore sends; one command in flight at a time per client.
 */
import { createConnection, type Socket } from 'node:net';

export class RedisError extends Error {}

export type Reply = string | number | null | Reply[];

export interface RespClient {
  call(...args: string[]): Promise<Reply>;
  close(): void;
}

export function connectResp(target: { path: string } | { host: string; port: number }, timeoutMs = 5_000): Promise<RespClient> {
  return new Promise((resolve, reject) => {
    const sock: Socket = 'path' in target ? createConnection(target.path) : createConnection(target.port, target.host);
    sock.setTimeout(timeoutMs);
    let buf = Buffer.alloc(0);
    const waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
    const fail = (e: Error) => {
      for (const w of waiting.splice(0)) w.reject(e);
    };
    sock.on('timeout', () => sock.destroy(new Error('redis: timeout')));
    sock.on('error', (e) => {
      fail(e);
      reject(e);
    });
    sock.on('close', () => fail(new Error('redis: connection closed')));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const parsed = parse(buf, 0);
        if (!parsed) break;
        buf = buf.subarray(parsed.end);
        const w = waiting.shift();
        if (parsed.value instanceof RedisError) w?.reject(parsed.value);
        else w?.resolve(parsed.value);
      }
    });
    sock.on('connect', () =>
      resolve({
        call(...args: string[]) {
          return new Promise<Reply>((res, rej) => {
            waiting.push({ resolve: res, reject: rej });
            const parts = [`*${args.length}\r\n`];
            for (const a of args) parts.push(`$${Buffer.byteLength(a)}\r\n${a}\r\n`);
            sock.write(parts.join(''));
          });
        },
        close: () => sock.destroy(),
      }),
    );
  });
}

function parse(b: Buffer, at: number): { value: Reply | RedisError; end: number } | null {
  const nl = b.indexOf('\r\n', at);
  if (nl < 0) return null;
  const line = b.toString('utf8', at + 1, nl);
  const next = nl + 2;
  switch (String.fromCharCode(b[at]!)) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (b.length < next + n + 2) return null;
      return { value: b.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out: Reply[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const item = parse(b, pos);
        if (!item) return null;
        if (item.value instanceof RedisError) return { value: item.value, end: item.end };
        out.push(item.value);
        pos = item.end;
      }
      return { value: out, end: pos };
    }
    default:
      throw new RedisError(`redis: unexpected reply type ${String.fromCharCode(b[at]!)}`);
  }
}
