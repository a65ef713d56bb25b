/**
 * Redis backup and restore throughput, side by side against a private Swift
 * and a private redis-server (a free port, its own directory; never 6379):
 *   anchor backup:  redis-cli --rdb - | gzip -6 | curl -T - <swift url>
 *   ours backup:    the agent's create_backup: the Redis datastore's plan
 *                   (the same redis-cli --rdb -) → runBackup → Swift
 *   anchor restore: curl <swift url> | gunzip | dd of=dump.rdb
 *   ours restore:   prepare(backup_info) of a second Redis datastore: the
 *                   agent's fetcher (checksum, gunzip, dd of=dump.rdb), then
 *                   the server starts and loads the RDB
 * The source is filled through `redis-cli --pipe` with ~1.2 KB JSON-like
 * values (keys `bench:<n>`). MB/s is RDB bytes per wall second. Peak RSS is
 * the transport side only: gzip + curl (or curl + gunzip + dd) for the
 * anchors, the Node process for ours; redis-cli and redis-server excluded.
 * Usage: node bench/backup.ts redis [dataset bytes] [segmentMiB]
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createRedisDatastore } from '../datastores/redis/index.ts';
import { connectResp } from '../datastores/redis/resp.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import type { Datastore, PrepareRequest } from '../src/datastore.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { startSwift } from '../test/integration/setup/swift.ts';
import { measureBackup, peakKiB, settle, shell, timedFetcher, type OursBackup } from './backup-common.ts';
import { oursChild, serveOursChild } from './shipped.ts';

const silent = pino({ level: 'silent' });
const ctx = () => ({ log: silent, signal: new AbortController().signal });
const CONFIG = 'save ""\nappendonly no\n';

function redis(stateDir: string, port: number): Datastore {
  return createRedisDatastore({ log: silent, section: {}, runner: 'process', stateDir, port, events: {} });
}
function prepareRequest(backupInfo: PrepareRequest['backupInfo']): PrepareRequest {
  return {
    memoryMb: 0, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo, configContents: CONFIG,
    rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '7.0',
  };
}
const adminPassword = (stateDir: string) => readFileSync(join(stateDir, 'os_admin.pass'), 'utf8').trim();
const socketOf = (stateDir: string) => join(stateDir, 'run', 'redis.sock');

async function dbsize(stateDir: string): Promise<number> {
  const c = await connectResp({ path: socketOf(stateDir) });
  try {
    await c.call('AUTH', 'os_admin', adminPassword(stateDir));
    return Number(await c.call('DBSIZE'));
  } finally {
    c.close();
  }
}

/** SETs of `bench:<n>` until `bytes` of keys and values went in, through redis-cli --pipe (password in the environment). */
async function fill(stateDir: string, bytes: number): Promise<void> {
  // A 4 MiB block of JSON-like session records with random ids; values are 1,200-byte slices of it.
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update('redis-bench').digest().subarray(0, 16), Buffer.alloc(16));
  const parts: string[] = [];
  for (let i = 0, size = 0; size < 4 * 1024 * 1024; i++) {
    const r = cipher.update(Buffer.alloc(12)).toString('hex');
    const p = `{"user":"u-${r.slice(0, 8)}","session":"${r}","cart":[${i % 97},${(i * 31) % 1000}],"ts":${1_764_000_000 + i},"state":"${['active', 'idle', 'checkout'][i % 3]}"}`;
    parts.push(p);
    size += p.length;
  }
  const block = Buffer.from(parts.join(','));
  const VALUE = 1200;
  const c = spawn('/usr/bin/redis-cli', ['-s', socketOf(stateDir), '--user', 'os_admin', '--no-auth-warning', '--pipe'], {
    env: { ...process.env, REDISCLI_AUTH: adminPassword(stateDir) },
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve, reject) => c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --pipe exited ${code}`)))));
  let n = 0;
  let written = 0;
  while (written < bytes) {
    const batch: Buffer[] = [];
    for (let j = 0; j < 1000 && written < bytes; j++, n++) {
      const key = `bench:${n}`;
      const off = (n * 7919) % (block.length - VALUE);
      batch.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${VALUE}\r\n`), block.subarray(off, off + VALUE), Buffer.from('\r\n'));
      written += key.length + VALUE;
    }
    if (!c.stdin.write(Buffer.concat(batch))) await new Promise((r) => c.stdin.once('drain', r));
  }
  c.stdin.end();
  await exited;
}

interface Measured {
  seconds: number;
  peakRssKiB: number;
  baselineKiB?: number;
}

/** In a fresh Node process (its own peak RSS): the agent's create_backup of the source. */
async function oursBackup(storageUrl: string, token: string, stateDir: string, segmentMaxSize: number): Promise<void> {
  process.stdout.write(JSON.stringify(await measureBackup({ datastore: redis(stateDir, 0), name: 'redis', version: '7.0', storageUrl, token, segmentMaxSize, codec: 'gzip' })));
}

/** In a fresh Node process: prepare(backup_info) of a new Redis datastore, timing the fetch apart from the whole prepare. */
async function oursRestore(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<void> {
  const baselineKiB = process.resourceUsage().maxRSS;
  const ds = redis(stateDir, await freePort());
  const timed = timedFetcher(ds, '7.0', storageUrl, token);
  const t = performance.now();
  await ds.lifecycle.prepare(prepareRequest({ id: 'restore', location, checksum }), ctx(), timed.fetcher);
  const seconds = (performance.now() - t) / 1000;
  const keys = await dbsize(stateDir);
  const rdbBytes = statSync(join(stateDir, 'data', 'dump.rdb')).size;
  await ds.lifecycle.close();
  process.stdout.write(JSON.stringify({ seconds, fetchSeconds: timed.fetchSeconds(), peakRssKiB: timed.fetchPeakKiB(), baselineKiB, keys, rdbBytes }));
}

const child = oursChild(import.meta.filename);

export async function benchRedis(bytes: number, segMiB: number | undefined): Promise<void> {
  const segmentMaxSize = segMiB ? segMiB * 1024 * 1024 : 2 * 1024 ** 3;
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-redis-'));
  const { info, stop } = await startSwift();
  const srcDir = join(dir, 'source');
  const source = redis(srcDir, await freePort());
  try {
    const swift = createSwiftClient({ storageUrl: info.storageUrl, token: info.token });
    await swift.putContainer('bench');
    await source.lifecycle.prepare(prepareRequest(null), ctx());
    let t = performance.now();
    await fill(srcDir, bytes);
    const fillSeconds = (performance.now() - t) / 1000;
    const keys = await dbsize(srcDir);
    const info2 = await (async () => {
      const c = await connectResp({ path: socketOf(srcDir) });
      await c.call('AUTH', 'os_admin', adminPassword(srcDir));
      const mem = /used_memory:(\d+)/.exec(String(await c.call('INFO', 'memory')))?.[1];
      c.close();
      return Number(mem);
    })();
    console.log(`filled ${keys.toLocaleString('en')} keys (${(bytes / 1e6).toFixed(0)} MB of keys and values, used_memory ${(info2 / 2 ** 20).toFixed(0)} MiB) in ${fillSeconds.toFixed(1)} s`);

    const hdr = join(dir, 'headers');
    writeFileSync(hdr, `X-Auth-Token: ${info.token}\n`, { mode: 0o600 });
    const url = `${info.storageUrl}/bench/anchor-${Date.now()}.rdb.gz`;
    const time = (f: string) => `/usr/bin/time -f %M -o "$DIR/${f}"`;
    const env = { DIR: dir, HDR: hdr, URL: url, SOCK: socketOf(srcDir), REDISCLI_AUTH: adminPassword(srcDir) };
    settle();
    const aBackup = await shell(
      `/usr/bin/redis-cli -s "$SOCK" --user os_admin --no-auth-warning --rdb - 2>/dev/null | ${time('gzip.rss')} gzip -6 | ${time('curl.rss')} curl -sS -f -o /dev/null -w '%{size_upload}' -H @"$HDR" -T - "$URL"`,
      env,
    );
    const anchorRdb = join(dir, 'anchor.rdb');
    settle();
    const aRestore = await shell(`${time('curl2.rss')} curl -sS -f -H @"$HDR" "$URL" | ${time('gunzip.rss')} gzip -dc | ${time('dd.rss')} dd of="$OUT" bs=1M status=none`, { ...env, OUT: anchorRdb });
    const rdbBytes = statSync(anchorRdb).size;
    rmSync(anchorRdb);

    settle();
    const ob = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(segmentMaxSize)]);
    // The source's memory goes back before the restore runs a second server.
    await source.lifecycle.close();
    settle();
    const or = await child.restore<Measured & { fetchSeconds: number; keys: number; rdbBytes: number }>(info.storageUrl, info.token, join(dir, 'target'), ob.location, ob.checksum);
    if (or.keys !== keys) throw new Error(`restored ${or.keys} keys, expected ${keys}`);

    const mb = rdbBytes / 1e6;
    const rows: Array<[string, number, number, number]> = [
      ['backup  anchor: redis-cli --rdb - | gzip | curl', aBackup.seconds, Number(aBackup.out) / 1e6, peakKiB(dir, 'gzip.rss', 'curl.rss') / 1024],
      ['backup  ours: create_backup (plan → runBackup)', ob.seconds, ob.size / 1e6, ob.peakRssKiB / 1024],
      ['restore anchor: curl | gunzip | dd', aRestore.seconds, Number(aBackup.out) / 1e6, peakKiB(dir, 'curl2.rss', 'gunzip.rss', 'dd.rss') / 1024],
      ['restore ours: fetcher (checksum, gunzip, dd)', or.fetchSeconds, ob.size / 1e6, or.peakRssKiB / 1024],
    ];
    console.log(`RDB ${mb.toFixed(0)} MB (${keys.toLocaleString('en')} keys), Swift on 127.0.0.1, node ${process.version}, segments of ${(segmentMaxSize / 2 ** 20).toFixed(0)} MiB`);
    console.log(['pipeline'.padEnd(50), 'MB/s'.padStart(8), 'seconds'.padStart(9), 'stored MB'.padStart(10), 'peak RSS MiB'.padStart(13)].join(''));
    for (const [name, s, stored, rss] of rows) console.log([name.padEnd(50), (mb / s).toFixed(1).padStart(8), s.toFixed(2).padStart(9), stored.toFixed(1).padStart(10), rss.toFixed(1).padStart(13)].join(''));
    console.log(`ours/anchor wall time: backup ${(ob.seconds / aBackup.seconds).toFixed(2)}x, restore ${(or.fetchSeconds / aRestore.seconds).toFixed(2)}x`);
    console.log(`whole restore prepare (fetch, then redis-server loads the RDB and answers): ${or.seconds.toFixed(2)} s; restored ${or.keys.toLocaleString('en')} keys, dump.rdb ${(or.rdbBytes / 1e6).toFixed(0)} MB`);
    console.log(`(ours: the Node process was at ${((ob.baselineKiB ?? 0) / 1024).toFixed(1)} MiB (backup) and ${((or.baselineKiB ?? 0) / 1024).toFixed(1)} MiB (restore) before starting)`);
  } finally {
    await source.lifecycle.close().catch(() => {});
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await serveOursChild({
  backup: (url, token, [stateDir, seg]) => oursBackup(url, token, stateDir!, Number(seg)),
  restore: oursRestore,
});
