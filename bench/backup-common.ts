/**
 * What the per-datastore backup benchmarks share: timed shell pipelines with
 * /usr/bin/time's peak RSS per stage, the caller context pointing the agent
 * at the bench's Swift, the agent's create_backup measured in its own
 * process, and a restore fetcher that times the fetch apart from prepare.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Codec } from '../src/backup/compress.ts';
import { createBackupService, type CallerContext } from '../src/backup/service.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import { exposeMinorGc } from '../src/process/idle-gc.ts';
import type { BackupFetcher, Datastore, OpContext, PrepareRequest } from '../src/datastore.ts';

export const benchCtx = (): OpContext => ({ log: pino({ level: 'silent' }), signal: new AbortController().signal });

/**
 * Flushes what earlier rows left in the page cache, so that no timed row pays for the writeback
 * of the one before it (a restore writes gigabytes that the kernel writes back for seconds after).
 */
export const settle = (): void => void execFileSync('sync');

/** A bash pipeline, timed; `/usr/bin/time -f %M -o "$DIR/<file>"` on a stage writes its peak RSS (KiB) there. */
export function shell(script: string, env: Record<string, string | undefined>): Promise<{ seconds: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const c = spawn('bash', ['-c', `set -o pipefail\n${script}`], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve({ seconds: (performance.now() - t) / 1000, out }) : reject(new Error(`pipeline exited ${code}`))));
  });
}

/** The sum of the peak RSS (KiB) `/usr/bin/time` wrote into each of `files` in `dir`. */
export const peakKiB = (dir: string, ...files: string[]): number =>
  files.reduce((sum, f) => sum + Number(readFileSync(join(dir, f), 'utf8').trim().split('\n').at(-1)), 0);

/** A word for bash, single-quoted. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The caller's context as Trove's newer API sends it: the token and a catalog whose object-store is the bench's Swift. */
export const catalogFor = (storageUrl: string, token: string): CallerContext => ({
  auth_token: token,
  service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: storageUrl }] }],
});

export interface OursBackup {
  seconds: number;
  peakRssKiB: number;
  baselineKiB: number;
  location: string;
  checksum: string;
  /** Stored bytes (the object's Content-Length). */
  size: number;
}

/** The agent's create_backup of `datastore` into the bench container, timed; run it in a fresh process for its own peak RSS. */
export async function measureBackup(o: {
  datastore: Datastore; name: string; version: string; storageUrl: string; token: string; segmentMaxSize: number; codec: Codec;
}): Promise<OursBackup> {
  const baselineKiB = process.resourceUsage().maxRSS;
  let final: Record<string, unknown> = {};
  const service = createBackupService({
    datastore: o.datastore, updateBackup: async (_id, fields) => void (final = fields), usedGb: async () => 0,
    container: 'bench', segmentMaxSize: o.segmentMaxSize, swiftUrl: null, datastoreVersion: o.version, encryptionKey: null, compression: o.codec,
    minorGc: exposeMinorGc(), // as the daemon composes it (src/main.ts)
  });
  const t = performance.now();
  await service.create({ id: `ours-${o.codec}-${Date.now()}`, datastore: o.name, datastoreVersion: o.version }, catalogFor(o.storageUrl, o.token), benchCtx());
  const seconds = (performance.now() - t) / 1000;
  if (final['state'] !== 'COMPLETED') throw new Error(`backup ended ${JSON.stringify(final)}`);
  const location = String(final['location']);
  const head = await createSwiftClient({ storageUrl: o.storageUrl, token: o.token }).head('bench', location.split('/').at(-1)!);
  return { seconds, peakRssKiB: process.resourceUsage().maxRSS, baselineKiB, location, checksum: String(final['checksum']), size: head.contentLength };
}

/**
 * The agent's restore fetcher for `datastore` from the bench's Swift, timing each fetch (download,
 * decompress, the datastore's unpacking tool) apart from the rest of prepare, with the process's
 * peak RSS when the last fetch ended.
 */
export function timedFetcher(datastore: Datastore, version: string, storageUrl: string, token: string): { fetcher: BackupFetcher; fetchSeconds(): number; fetchPeakKiB(): number } {
  const service = createBackupService({
    datastore, updateBackup: async () => {}, usedGb: async () => 0,
    container: 'bench', segmentMaxSize: 2 ** 31, swiftUrl: null, datastoreVersion: version, encryptionKey: null, compression: 'gzip',
    minorGc: exposeMinorGc(),
  });
  const real = service.fetcher(catalogFor(storageUrl, token), null);
  let seconds = 0;
  let peak = 0;
  return {
    fetcher: {
      metadata: (l, c) => real.metadata(l, c),
      chain: (l, sum, c) => real.chain(l, sum, c),
      async restoreInto(l, sum, consumer, c) {
        const t = performance.now();
        await real.restoreInto(l, sum, consumer, c);
        seconds += (performance.now() - t) / 1000;
        peak = process.resourceUsage().maxRSS;
      },
    },
    fetchSeconds: () => seconds,
    fetchPeakKiB: () => peak,
  };
}

/**
 * The raw anchors of a datastore bench, each timed after a `settle()`: the tool alone (its output
 * counted), into `gzip -6`, into `zstd -T0 -3`, and, given a Swift object URL and a header file
 * with the token, zstd into Swift with curl (what Swift costs on these cores). Peak RSS is the
 * compressor's (and not the tool's). `after` runs after each (a tool's leftovers).
 */
export async function rawPipelines(o: {
  label: string; tool: string; env: Record<string, string | undefined>; dir: string; swift?: { hdr: string; url: string }; after?: () => void;
}): Promise<{ rows: Array<[string, number, number]>; streamBytes: number }> {
  const time = (f: string) => `/usr/bin/time -f %M -o "$DIR/${f}"`;
  const pipes: Array<[string, string, string]> = [
    [`raw: ${o.label} > /dev/null`, '| wc -c', ''],
    [`raw: ${o.label} | gzip -6 > /dev/null`, `| ${time('gz.rss')} gzip -6 > /dev/null`, 'gz.rss'],
    [`raw: ${o.label} | zstd -T0 -3 > /dev/null`, `| ${time('zs.rss')} zstd -T0 -3 -q > /dev/null`, 'zs.rss'],
  ];
  if (o.swift) pipes.push([`raw: ${o.label} | zstd -T0 -3 | curl -T - → Swift`, `| ${time('zc.rss')} zstd -T0 -3 -q | curl -sS -f -o /dev/null -H @"$HDR" -T - "$URL"`, 'zc.rss']);
  const rows: Array<[string, number, number]> = [];
  let streamBytes = 0;
  for (const [name, tail, rss] of pipes) {
    settle();
    const r = await shell(`${o.tool} 2>/dev/null ${tail}`, { ...o.env, DIR: o.dir, HDR: o.swift?.hdr, URL: o.swift?.url });
    if (!rss) streamBytes = Number(r.out.trim());
    rows.push([name, r.seconds, rss ? peakKiB(o.dir, rss) / 1024 : 0]);
    o.after?.();
  }
  return { rows, streamBytes };
}

/** Prints the benches' table header and returns its row printer (MB/s is `mb` per second). */
export function table(mb: number, width = 56): (name: string, seconds: number, stored: number | null, rssMiB: number) => void {
  console.log(['pipeline'.padEnd(width), 'MB/s'.padStart(8), 'seconds'.padStart(9), 'stored MB'.padStart(10), 'peak RSS MiB'.padStart(13)].join(''));
  return (name, s, stored, rss) =>
    console.log([name.padEnd(width), (mb / s).toFixed(1).padStart(8), s.toFixed(2).padStart(9), (stored === null ? '-' : (stored / 1e6).toFixed(1)).padStart(10), rss.toFixed(1).padStart(13)].join(''));
}

export interface OursRestore {
  seconds: number;
  fetchSeconds: number;
  peakRssKiB: number;
  baselineKiB: number;
  rows: number;
}

/**
 * The agent's prepare(backup_info) of `datastore` from the bench's Swift, timed, the fetches
 * apart; `rows` counts what came back, before the datastore is closed. Run it in a fresh process.
 */
export async function measureRestore(o: {
  datastore: Datastore; version: string; storageUrl: string; token: string; request: PrepareRequest; rows: () => Promise<number>;
}): Promise<OursRestore> {
  const baselineKiB = process.resourceUsage().maxRSS;
  const timed = timedFetcher(o.datastore, o.version, o.storageUrl, o.token);
  const t = performance.now();
  await o.datastore.lifecycle.prepare(o.request, benchCtx(), timed.fetcher);
  const seconds = (performance.now() - t) / 1000;
  const rows = await o.rows();
  await o.datastore.lifecycle.close();
  return { seconds, fetchSeconds: timed.fetchSeconds(), peakRssKiB: process.resourceUsage().maxRSS, baselineKiB, rows };
}
