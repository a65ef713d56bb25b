import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';
import { SwiftError } from '../../../src/errors.ts';

/** An HTTP server answering from a script of statuses, one per request. */
async function scripted(statuses: number[]): Promise<{ url: string; server: Server; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(statuses.shift() ?? 500, { etag: '"d41d8cd98f00b204e9800998ecf8427e"' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/AUTH_t`, server, seen };
}

let servers: Server[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

describe('Swift client retries', () => {
  it('retries a replayable request after 503 and succeeds, as swiftclient does', async () => {
    const s = await scripted([503, 503, 201]);
    servers.push(s.server);
    const swift = createSwiftClient({ storageUrl: s.url, token: 't', retryDelayMs: 5 });
    await swift.putContainer('c');
    expect(s.seen).toEqual(['PUT /v1/AUTH_t/c', 'PUT /v1/AUTH_t/c', 'PUT /v1/AUTH_t/c']);
  });

  it('gives up after the configured retries with the last status', async () => {
    const s = await scripted([500, 500, 500, 500]);
    servers.push(s.server);
    const swift = createSwiftClient({ storageUrl: s.url, token: 't', retries: 2, retryDelayMs: 5 });
    const e = await swift.head('c', 'o').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SwiftError);
    expect((e as SwiftError).details.status).toBe(500);
    expect(s.seen).toHaveLength(3);
  });

  it('does not retry a 4xx, nor a streamed upload (its body cannot be sent again)', async () => {
    const s = await scripted([404, 503, 201]);
    servers.push(s.server);
    const swift = createSwiftClient({ storageUrl: s.url, token: 't', retryDelayMs: 5 });
    expect(((await swift.head('c', 'o').catch((x: unknown) => x)) as SwiftError).details.status).toBe(404);
    const e = await swift.putObject('c', 'seg', Readable.from([Buffer.from('x')])).catch((x: unknown) => x);
    expect((e as SwiftError).details.status).toBe(503);
    expect(s.seen).toHaveLength(2);
  });
});

describe('Swift client with looked-up credentials', () => {
  it('looks the endpoint up on first use, and asks again once after a 401', async () => {
    const s = await scripted([401, 201, 401, 401]);
    servers.push(s.server);
    const asked: boolean[] = [];
    const swift = createSwiftClient({
      retryDelayMs: 5,
      auth: async ({ refresh }) => {
        asked.push(refresh);
        return { storageUrl: s.url, token: `t${asked.length}` };
      },
    });
    expect(asked).toEqual([]);
    expect(await swift.storageUrl()).toBe(s.url);
    await swift.putContainer('c');
    expect(asked).toEqual([false, true]);
    // A second 401 after a fresh token is the answer, not a loop.
    const e = await swift.head('c', 'o').catch((x: unknown) => x);
    expect((e as SwiftError).details.status).toBe(401);
    expect(asked).toEqual([false, true, true]);
    expect(s.seen).toHaveLength(4);
  });

  it('does not replay a streamed upload after a 401', async () => {
    const s = await scripted([401]);
    servers.push(s.server);
    let asks = 0;
    const swift = createSwiftClient({ auth: async () => (asks++, { storageUrl: s.url, token: 't' }) });
    const e = await swift.putObject('c', 'seg', Readable.from([Buffer.from('x')])).catch((x: unknown) => x);
    expect((e as SwiftError).details.status).toBe(401);
    expect(asks).toBe(1);
  });
});
