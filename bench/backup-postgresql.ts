/**
 * PostgreSQL backup and restore throughput, side by side in one run, against
 * a private Swift and a private postgres the agent's PostgreSQL datastore
 * runs itself (free port, own directory; never the machine's 5432), filled
 * by `pgbench -i -s N`:
 *   raw:    pg_basebackup -Ft -X fetch -D - > /dev/null              (the tool alone)
 *           pg_basebackup … | gzip -6 > /dev/null
 *           pg_basebackup … | zstd -T0 -3 > /dev/null
 *   anchor: pg_basebackup … | gzip -6 | curl -T - <Swift>   (upstream Trove's driver: the tar through one gzip)
 *           pg_basebackup … -z | curl -T - <Swift>          (its exact flag: pg_basebackup gzips in its own process)
 *   ours:   the agent's create_backup (the datastore's plan → runBackup → Swift), gzip and zstd
 *   restore anchor: curl <gzip object> | gzip -dc | tar -x   (Trove's restore command is `tar xzf - -C <datadir>`)
 *   restore raw:    curl <zstd object> | zstd -dc | tar -x -b 256 -B   (the agent's tools and flags, no agent)
 *   restore ours:   prepare(backup_info) of a new PostgreSQL datastore (checksum, decompress, tar -x,
 *                   archive recovery, server started), from the gzip and the zstd backup
 * The raw and anchor rows use the very command line the agent's plan builds
 * (the password in the environment; nothing secret on argv, the Swift token
 * in a header file). MB/s is pg_basebackup's tar size per wall second. Peak
 * RSS is the Node process for ours (the tools excluded), the compressor (and
 * curl) for raw and anchor. Trove's Python backup tool itself is not packaged
 * by Debian and its code is not ours to vendor: the anchors run its commands.
 * Usage: node bench/backup.ts postgresql [data dir bytes, default 2e9] [segmentMiB]
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { createPostgresDatastore } from '../datastores/postgresql/index.ts';
import type { Codec } from '../src/backup/compress.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import type { Datastore, PrepareRequest } from '../src/datastore.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { startSwift } from '../test/integration/setup/swift.ts';
import { measureBackup, peakKiB, rawPipelines, settle, shell, shQuote, table, timedFetcher, type OursBackup } from './backup-common.ts';
import { oursChild, serveOursChild } from './shipped.ts';

const BIN = '/usr/lib/postgresql/15/bin';
const silent = pino({ level: 'silent' });
const ctx = () => ({ log: silent, signal: new AbortController().signal });
const CONFIG = "shared_buffers = '256MB'\nmax_wal_size = '2GB'\n";
/** pgbench_accounts rows per scale unit. */
const ROWS_PER_SCALE = 100_000;

const postgres = (stateDir: string, port: number): Datastore =>
  createPostgresDatastore({ log: silent, section: {}, runner: 'process', stateDir, port, events: {} });

function prepareRequest(backupInfo: PrepareRequest['backupInfo']): PrepareRequest {
  return {
    memoryMb: 0, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo, configContents: CONFIG,
    rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '15',
  };
}
const adminPassword = (stateDir: string) => readFileSync(join(stateDir, 'os_admin.pass'), 'utf8').trim();
async function query<T>(stateDir: string, port: number, database: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ host: join(stateDir, 'run'), port, user: 'os_admin', password: adminPassword(stateDir), database });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}
const accounts = async (stateDir: string, port: number) =>
  Number((await query<{ n: string }>(stateDir, port, 'bench', 'SELECT count(*) AS n FROM pgbench_accounts'))[0]!.n);

/** `pgbench -i -s N` into database bench, N from ~15 MB of data directory per scale unit; os_admin's password in the environment. */
function fill(stateDir: string, port: number, scale: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(join(BIN, 'pgbench'), ['-h', join(stateDir, 'run'), '-p', String(port), '-U', 'os_admin', '-i', '-q', '-s', String(scale), 'bench'], {
      env: { ...process.env, PGPASSWORD: adminPassword(stateDir) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pgbench -i exited ${code}: ${err}`))));
  });
}

const duBytes = (path: string) => Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);

/** A postgres a crashed child left running in one of our directories: stopped by the pid in its postmaster.pid. */
async function stopLeftover(stateDir: string): Promise<void> {
  const pidFile = join(stateDir, 'data', 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!(pid > 1)) return;
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
}

/**
 * Starts postgres on a directory the anchor restored, as Trove's agent does after its restore
 * (recovery.signal, then the server; WAL from pg_wal, nothing to fetch: restore_command fails
 * at once), and stops it again. Returns the seconds until it accepted connections.
 */
async function startRestored(dataDir: string): Promise<number> {
  const port = await freePort();
  execFileSync('chown', ['-R', 'postgres:postgres', dataDir]);
  chmodSync(dataDir, 0o700);
  writeFileSync(join(dataDir, 'recovery.signal'), '');
  execFileSync('chown', ['postgres:postgres', join(dataDir, 'recovery.signal')]);
  const opts = `-p ${port} -k ${dataDir} -c listen_addresses='' -c hba_file=${dataDir}/pg_hba.conf -c hot_standby=off -c restore_command=false`;
  const pgCtl = (...args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), '-D', dataDir, ...args], { stdio: 'ignore' });
  const t = performance.now();
  pgCtl('-w', '-t', '600', '-l', join(dataDir, 'start.log'), '-o', opts, 'start');
  const seconds = (performance.now() - t) / 1000;
  pgCtl('-m', 'fast', '-w', 'stop');
  return seconds;
}

/** In a fresh Node process (its own peak RSS): the agent's create_backup of the source. */
async function oursBackup(storageUrl: string, token: string, stateDir: string, port: number, segmentMaxSize: number, codec: Codec): Promise<void> {
  process.stdout.write(JSON.stringify(await measureBackup({ datastore: postgres(stateDir, port), name: 'postgresql', version: '15', storageUrl, token, segmentMaxSize, codec })));
}

/** In a fresh Node process: prepare(backup_info) of a new PostgreSQL datastore; the fetch (stream into tar -x) timed apart. */
async function oursRestore(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<void> {
  const baselineKiB = process.resourceUsage().maxRSS;
  const port = await freePort();
  const ds = postgres(stateDir, port);
  const timed = timedFetcher(ds, '15', storageUrl, token);
  try {
    const t = performance.now();
    await ds.lifecycle.prepare(prepareRequest({ id: 'restore', location, checksum }), ctx(), timed.fetcher);
    const seconds = (performance.now() - t) / 1000;
    const rows = await accounts(stateDir, port);
    process.stdout.write(JSON.stringify({ seconds, fetchSeconds: timed.fetchSeconds(), peakRssKiB: process.resourceUsage().maxRSS, baselineKiB, rows }));
  } finally {
    await ds.lifecycle.close();
  }
}

const child = oursChild(import.meta.filename);

export async function benchPostgresql(bytes: number, segMiB: number | undefined): Promise<void> {
  const segmentMaxSize = segMiB ? segMiB * 1024 * 1024 : 2 * 1024 ** 3;
  for (const bin of [join(BIN, 'pg_basebackup'), join(BIN, 'pgbench'), '/usr/bin/zstd', '/usr/bin/gzip', '/usr/bin/curl', '/usr/bin/tar']) execFileSync('test', ['-x', bin]);
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-postgresql-'));
  // The postgres user must get through to the data directories.
  chmodSync(dir, 0o711);
  const { info, stop } = await startSwift();
  const srcDir = join(dir, 'source');
  const port = await freePort();
  const source = postgres(srcDir, port);
  try {
    await source.lifecycle.prepare(prepareRequest(null), ctx());
    await query(srcDir, port, 'postgres', 'CREATE DATABASE bench');
    const scale = Math.max(1, Math.round(bytes / 15e6));
    let t = performance.now();
    await fill(srcDir, port, scale);
    const expected = scale * ROWS_PER_SCALE;
    const dataDirBytes = duBytes(join(srcDir, 'data'));
    const baseBytes = duBytes(join(srcDir, 'data', 'base'));
    console.log(`pgbench -i -s ${scale}: ${expected.toLocaleString('en')} accounts in ${((performance.now() - t) / 1000).toFixed(0)} s; data directory ${(dataDirBytes / 1e6).toFixed(0)} MB (base/ ${(baseBytes / 1e6).toFixed(0)} MB, the rest mostly pg_wal)`);

    // Raw tool pipelines with the agent's own pg_basebackup command line (the password in its environment),
    // the one it runs for gzip: the plain tar (for zstd the agent has the server compress it).
    const plan = await source.backup!.plan({ backupId: 'raw', parent: null, codec: 'gzip' }, ctx());
    const tool = [plan.producer.file, ...plan.producer.args].map(shQuote).join(' ');
    const toolEnv = { ...plan.producer.env, DIR: dir };
    const time = (f: string) => `/usr/bin/time -f %M -o "$DIR/${f}"`;
    const { rows: raw, streamBytes } = await rawPipelines({ label: 'pg_basebackup', tool, env: toolEnv, dir });

    // Trove's driver into Swift: the token goes to curl through a header file, not argv.
    const hdr = join(dir, 'headers');
    writeFileSync(hdr, `X-Auth-Token: ${info.token}\n`, { mode: 0o600 });
    await createSwiftClient({ storageUrl: info.storageUrl, token: info.token }).putContainer('bench');
    const curl = (f: string) => `${time(f)} curl -sS -f -o /dev/null -w '%{size_upload}' -H @"$HDR" -T - "$URL"`;
    const anchorUrl = `${info.storageUrl}/bench/anchor-gzip.tar.gz`;
    settle();
    const ag = await shell(`${tool} | ${time('ag.rss')} gzip -6 | ${curl('agc.rss')}`, { ...toolEnv, HDR: hdr, URL: anchorUrl });
    settle();
    const az = await shell(`${tool} -z | ${curl('azc.rss')}`, { ...toolEnv, HDR: hdr, URL: `${info.storageUrl}/bench/anchor-z.tar.gz` });
    // The raw zstd pipe uploading to the same Swift: what Swift itself costs on these cores.
    const rawZstUrl = `${info.storageUrl}/bench/raw.tar.zst`;
    settle();
    const zc = await shell(`${tool} | ${time('zc.rss')} zstd -T0 -3 -q | ${curl('zcc.rss')}`, { ...toolEnv, HDR: hdr, URL: rawZstUrl });
    const anchors: Array<[string, number, number, number]> = [
      ["anchor: Trove's codec, one gzip, curl to Swift", ag.seconds, Number(ag.out), (peakKiB(dir, 'ag.rss') + peakKiB(dir, 'agc.rss')) / 1024],
      ["anchor: Trove's command (pg_basebackup -z), curl", az.seconds, Number(az.out), peakKiB(dir, 'azc.rss') / 1024],
    ];
    await plan.cleanup();

    settle();
    const gz = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(port), String(segmentMaxSize), 'gzip']);
    settle();
    const zs = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(port), String(segmentMaxSize), 'zstd']);
    await source.lifecycle.close();

    // Trove's restore of its own object: curl | gzip -dc | tar -x (its command is `tar xzf - -C <datadir>`).
    const target = join(dir, 'raw-restore');
    mkdirSync(target);
    settle();
    const rr = await shell(`curl -sS -f -H @"$HDR" "$URL" | gzip -dc | tar -x -C "$T"`, { HDR: hdr, URL: anchorUrl, T: target });
    if (!existsSync(join(target, 'PG_VERSION'))) throw new Error('the raw restore has no PG_VERSION');
    // What Trove's agent does next (postgres manager, prepare): recovery.signal, then start the
    // server; its first start syncs the data directory and replays the backup's WAL, as ours does.
    const anchorStart = await startRestored(target);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target);
    settle();
    // The same tools with the agent's tar flags (128 KiB records): what the agent's own work costs on top.
    const rrz = await shell(`curl -sS -f -H @"$HDR" "$URL" | zstd -dcq | tar -x -b 256 -B -C "$T"`, { HDR: hdr, URL: rawZstUrl, T: target });
    rmSync(target, { recursive: true, force: true });
    type Restored = { seconds: number; fetchSeconds: number; peakRssKiB: number; baselineKiB: number; rows: number };
    settle();
    const rg = await child.restore<Restored>(info.storageUrl, info.token, join(dir, 'restore-gz'), gz.location, gz.checksum);
    rmSync(join(dir, 'restore-gz'), { recursive: true, force: true });
    settle();
    const rz = await child.restore<Restored>(info.storageUrl, info.token, join(dir, 'restore-zst'), zs.location, zs.checksum);
    for (const r of [rg, rz]) if (r.rows !== expected) throw new Error(`restored ${r.rows} pgbench_accounts rows, expected ${expected}`);

    const mb = streamBytes / 1e6;
    console.log(`base backup tar ${mb.toFixed(0)} MB (MB/s below is of it), ${expected.toLocaleString('en')} rows restored twice, Swift on 127.0.0.1, node ${process.version}, segments of ${(segmentMaxSize / 2 ** 20).toFixed(0)} MiB, ${new Date().toISOString().slice(0, 10)}`);
    const row = table(mb);
    for (const [name, s, rss] of raw) row(name, s, null, rss);
    row('raw: pg_basebackup | zstd -T0 -3 | curl -T - → Swift', zc.seconds, Number(zc.out), (peakKiB(dir, 'zc.rss') + peakKiB(dir, 'zcc.rss')) / 1024);
    for (const [name, s, stored, rss] of anchors) row(name, s, stored, rss);
    row('ours: create_backup gzip → Swift', gz.seconds, gz.size, gz.peakRssKiB / 1024);
    row('ours: create_backup zstd → Swift', zs.seconds, zs.size, zs.peakRssKiB / 1024);
    row('restore anchor: curl | gzip -dc | tar -x', rr.seconds, null, 0);
    row('restore anchor, then its server start (recovery)', rr.seconds + anchorStart, null, 0);
    row('restore raw: curl | zstd -dc | tar -x -b 256 -B', rrz.seconds, null, 0);
    row('restore ours from gzip (prepare, server started)', rg.seconds, null, rg.peakRssKiB / 1024);
    row('restore ours from zstd (prepare, server started)', rz.seconds, null, rz.peakRssKiB / 1024);
    const [, rawZs] = raw[2]!;
    const [, anchorGz] = anchors[0]!;
    const [, anchorZ] = anchors[1]!;
    console.log(`ratios: ours zstd ${(zs.seconds / rawZs).toFixed(2)}x the time of pg_basebackup | zstd -T0 -3 > /dev/null (target ≤ 1.10), ` +
      `${(zs.seconds / zc.seconds).toFixed(2)}x the same pipe uploading to Swift; ` +
      `ours gzip ${(anchorGz / gz.seconds).toFixed(2)}x the speed of the one-gzip anchor (${(anchorZ / gz.seconds).toFixed(2)}x of pg_basebackup -z); ` +
      `restore anchor / restore ours from zstd ${(rr.seconds / rz.seconds).toFixed(2)}x (target ≥ 1.5; from gzip ${(rr.seconds / rg.seconds).toFixed(2)}x; ` +
      `both with the server start: ${((rr.seconds + anchorStart) / rz.seconds).toFixed(2)}x, the anchor's start ${anchorStart.toFixed(1)} s; ` +
      `fetch + tar -x alone: gzip ${rg.fetchSeconds.toFixed(1)} s, zstd ${rz.fetchSeconds.toFixed(1)} s, so ${(rr.seconds / rz.fetchSeconds).toFixed(2)}x, ` +
      `and ${(rrz.seconds / rz.fetchSeconds).toFixed(2)}x the speed of the raw zstd restore); ` +
      `peak RSS ${(Math.max(gz.peakRssKiB, zs.peakRssKiB, rg.peakRssKiB, rz.peakRssKiB) / 1024).toFixed(0)} MiB (target ≤ 150 MB)`);
    console.log(`(ours: the Node process was at ${(gz.baselineKiB / 1024).toFixed(0)} MiB before a backup, ${(rg.baselineKiB / 1024).toFixed(0)} MiB before a restore)`);
  } finally {
    await source.lifecycle.close().catch(() => {});
    for (const d of ['restore-gz', 'restore-zst']) await stopLeftover(join(dir, d)).catch(() => {});
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await serveOursChild({
  backup: (url, token, [stateDir, port, seg, codec]) => oursBackup(url, token, stateDir!, Number(port), Number(seg), codec as Codec),
  restore: oursRestore,
});
