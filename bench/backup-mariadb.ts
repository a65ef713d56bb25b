/**
 * MariaDB backup and restore throughput, side by side in one run, against a
 * private Swift and a private mariadbd the agent's MariaDB datastore runs
 * itself (free port, own directory; never the machine's 3306):
 *   raw:    mariabackup --backup --stream=xbstream > /dev/null      (the tool alone)
 *           mariabackup … | gzip -6 > /dev/null                     (Trove's tool's codec, one gzip)
 *           mariabackup … | zstd -T0 -3 > /dev/null
 *   ours:   the agent's create_backup (the datastore's plan → runBackup → Swift), gzip and zstd
 *   restore raw:  curl <gzip object> | gzip -dc | mbstream -x, then mariabackup --prepare
 *   restore ours: prepare(backup_info) of a new MariaDB datastore (checksum, decompress,
 *                 mbstream, mariabackup --prepare, start), from the gzip and the zstd backup
 * The raw rows use the very command line the agent's plan builds (its option
 * file carries the password; nothing secret on argv). MB/s is mariabackup's
 * xbstream size (what is compressed and stored) per wall second. Peak RSS is the Node process for ours
 * (the tools excluded), the compressor for raw. Trove's own Python backup tool
 * is not packaged by Debian and its code is not ours to vendor: its rows run
 * when GA_TROVE_SRC names a checkout of openstack/trove 18.0.0 (then a private
 * Keystone starts too, as the tool authenticates there).
 * Usage: node bench/backup.ts mariadb [data dir bytes, default 2e9] [segmentMiB]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createMariadbDatastore } from '../datastores/mariadb/index.ts';
import { MARIABACKUP, MBSTREAM } from '../datastores/mysql/backup.ts';
import { connectSql } from '../datastores/mysql/sql.ts';
import type { Codec } from '../src/backup/compress.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import type { Datastore, PrepareRequest } from '../src/datastore.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { mariabackupHome, runTroveTool, toolRestored, toolSaved, TROVE_SRC } from '../test/integration/harness/trove-tool.ts';
import { startKeystone, type KeystoneInfo } from '../test/integration/setup/keystone.ts';
import { startSwift } from '../test/integration/setup/swift.ts';
import { measureBackup, measureRestore, rawPipelines, settle, shell, shQuote, table, type OursBackup, type OursRestore } from './backup-common.ts';
import { oursChild, serveOursChild } from './shipped.ts';

const silent = pino({ level: 'silent' });
const ctx = () => ({ log: silent, signal: new AbortController().signal });
const CONFIG = '[mysqld]\ninnodb_buffer_pool_size = 256M\ninnodb_log_file_size = 256M\n';

const mariadb = (stateDir: string, port: number): Datastore =>
  createMariadbDatastore({ log: silent, section: {}, runner: 'process', stateDir, port, events: {} });

function prepareRequest(backupInfo: PrepareRequest['backupInfo']): PrepareRequest {
  return {
    memoryMb: 0, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo, configContents: CONFIG,
    rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '10.11',
  };
}
const admin = (stateDir: string) =>
  connectSql({ socketPath: join(stateDir, 'run', 'mysqld.sock'), user: 'os_admin', password: /password = (.*)/.exec(readFileSync(join(stateDir, 'os_admin.cnf'), 'utf8'))![1]! });

/** Order-like rows (ids, hashes, states, amounts, some free text) until the data directory holds `bytes`. */
async function fill(stateDir: string, bytes: number): Promise<{ rows: number; dataBytes: number }> {
  const db = admin(stateDir);
  try {
    await db.query('CREATE DATABASE IF NOT EXISTS bench');
    await db.query(`CREATE TABLE IF NOT EXISTS bench.orders (
      id BIGINT PRIMARY KEY, customer CHAR(32), sku VARCHAR(40), state VARCHAR(16), amount DECIMAL(12,2), note VARCHAR(400), KEY (customer)) ENGINE=InnoDB`);
    let rows = 0;
    for (;;) {
      const [size] = await db.query<{ n: number }>("SELECT COALESCE(SUM(data_length + index_length), 0) AS n FROM information_schema.tables WHERE table_schema = 'bench'");
      if (Number(size!.n) >= bytes) return { rows, dataBytes: Number(size!.n) };
      // seq_1_to_N is MariaDB's Sequence engine: a batch of 500,000 rows per statement.
      await db.query(
        `INSERT INTO bench.orders SELECT ? + seq, md5(seq % 50000), concat('SKU-', seq % 9973, '-', substr(sha1(seq), 1, 8)),
           elt(1 + seq % 4, 'new', 'paid', 'shipped', 'returned'), (seq % 100000) / 100,
           concat_ws(' ', 'order', ? + seq, 'for customer', md5(seq % 50000), 'delivered to', elt(1 + seq % 5, 'Geneva', 'Meyrin', 'Prevessin', 'Lyon', 'Annecy'), repeat(substr(md5(seq), 1, 6), seq % 30))
         FROM bench.seq_1_to_500000`,
        [rows, rows],
      );
      rows += 500_000;
    }
  } finally {
    await db.end();
  }
}

/** In a fresh Node process (its own peak RSS): the agent's create_backup of the source. */
async function oursBackup(storageUrl: string, token: string, stateDir: string, segmentMaxSize: number, codec: Codec): Promise<void> {
  process.stdout.write(JSON.stringify(await measureBackup({ datastore: mariadb(stateDir, 0), name: 'mariadb', version: '10.11', storageUrl, token, segmentMaxSize, codec })));
}

/** In a fresh Node process: prepare(backup_info) of a new MariaDB datastore; the fetch (stream into mbstream) timed apart. */
async function oursRestore(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<void> {
  const rows = async (): Promise<number> => {
    const db = admin(stateDir);
    const [r] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench.orders');
    await db.end();
    return Number(r!.n);
  };
  const datastore = mariadb(stateDir, await freePort());
  process.stdout.write(JSON.stringify(await measureRestore({ datastore, version: '10.11', storageUrl, token, request: prepareRequest({ id: 'restore', location, checksum }), rows })));
}

/**
 * Trove's own tool (GA_TROVE_SRC), as Trove 18's guest runs it, on the same source: a backup
 * to the Keystone-authenticated Swift, then its restore into an empty /var/lib/mysql (bound to
 * a directory here) and the mariabackup --prepare it leaves out for a full backup; seconds each.
 */
async function troveTool(ks: KeystoneInfo, srcDir: string, dir: string): Promise<{ backup: number; stored: number; restore: number; prepare: number }> {
  const home = join(dir, 'trove-home');
  mariabackupHome(home, srcDir);
  const pw = /password = (.*)/.exec(readFileSync(join(srcDir, 'os_admin.cnf'), 'utf8'))![1]!;
  settle();
  let t = performance.now();
  const out = await runTroveTool(ks, 'mariabackup', ['--backup', `--backup-id=trove-${Date.now()}`, '--db-host=localhost', '--db-user=os_admin', `--db-password=${pw}`, '--swift-container=bench'],
    [['tmpfs', '/var/lib/mysql']], { HOME: home });
  const backup = (performance.now() - t) / 1000;
  const saved = toolSaved(out);
  if (!saved) throw new Error(`Trove's tool did not store a backup: ${out.slice(-1500)}`);
  const head = await createSwiftClient({ storageUrl: ks.storageUrl, token: ks.userToken }).head('bench', saved.location.split('/').at(-1)!);
  const varLib = join(dir, 'trove-restore');
  mkdirSync(join(varLib, 'data'), { recursive: true });
  settle();
  t = performance.now();
  const r = await runTroveTool(ks, 'mariabackup', ['--nobackup', `--restore-from=${saved.location}`, `--restore-checksum=${saved.checksum}`], [[varLib, '/var/lib/mysql']]);
  const restore = (performance.now() - t) / 1000;
  if (!toolRestored(r)) throw new Error(`Trove's tool did not restore: ${r.slice(-1500)}`);
  t = performance.now();
  execFileSync(MARIABACKUP, ['--prepare', `--target-dir=${join(varLib, 'data')}`], { stdio: 'ignore' });
  const prepare = (performance.now() - t) / 1000;
  rmSync(varLib, { recursive: true, force: true });
  return { backup, stored: head.contentLength, restore, prepare };
}

const child = oursChild(import.meta.filename);

export async function benchMariadb(bytes: number, segMiB: number | undefined): Promise<void> {
  const segmentMaxSize = segMiB ? segMiB * 1024 * 1024 : 2 * 1024 ** 3;
  for (const bin of [MARIABACKUP, MBSTREAM, '/usr/bin/zstd', '/usr/bin/gzip', '/usr/bin/curl']) execFileSync('test', ['-x', bin]);
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-mariadb-'));
  const { info, backend, stop } = await startSwift();
  const keystone = TROVE_SRC ? await startKeystone(Promise.resolve(backend)).catch(async (e: unknown) => { await stop(); throw e; }) : null;
  const srcDir = join(dir, 'source');
  const source = mariadb(srcDir, await freePort());
  try {
    await source.lifecycle.prepare(prepareRequest(null), ctx());
    let t = performance.now();
    const filled = await fill(srcDir, bytes);
    const dataDirBytes = Number(execFileSync('du', ['-sb', join(srcDir, 'data')], { encoding: 'utf8' }).split('\t')[0]);
    console.log(`filled ${filled.rows.toLocaleString('en')} rows in ${((performance.now() - t) / 1000).toFixed(0)} s; tables ${(filled.dataBytes / 1e6).toFixed(0)} MB, data directory ${(dataDirBytes / 1e6).toFixed(0)} MB`);

    // Raw tool pipelines with the agent's own mariabackup command line.
    const plan = await source.backup!.plan({ backupId: 'raw', parent: null, codec: 'gzip' }, ctx());
    const tool = [plan.producer.file, ...plan.producer.args].map(shQuote).join(' ');
    const hdr = join(dir, 'headers');
    writeFileSync(hdr, `X-Auth-Token: ${info.token}\n`, { mode: 0o600 });
    const rawZstUrl = `${info.storageUrl}/bench/raw-${Date.now()}.xbstream.zst`;
    await createSwiftClient({ storageUrl: info.storageUrl, token: info.token }).putContainer('bench');
    const targetDir = plan.producer.args.find((a) => a.startsWith('--target-dir='))!.slice('--target-dir='.length);
    const { rows: raw, streamBytes } = await rawPipelines({
      label: 'mariabackup', tool, env: {}, dir, swift: { hdr, url: rawZstUrl }, after: () => rmSync(targetDir, { recursive: true, force: true }),
    });
    await plan.cleanup();

    settle();
    const gz = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(segmentMaxSize), 'gzip']);
    settle();
    const zs = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(segmentMaxSize), 'zstd']);
    const trove = keystone ? await troveTool(keystone.info, srcDir, dir) : null;
    await source.lifecycle.close();

    // Raw restore of our gzip object: what a shell does with Trove's format.
    const target = join(dir, 'raw-restore');
    const rawRestore = async (decompress: string, url: string) => {
      settle();
      const r = await shell(
        `mkdir -p "$T" && curl -sS -f -H @"$HDR" "$URL" | ${decompress} | ${MBSTREAM} -x -C "$T" && ${MARIABACKUP} --prepare --target-dir="$T" 2>/dev/null`,
        { HDR: hdr, URL: url, T: target },
      );
      rmSync(target, { recursive: true, force: true });
      return r;
    };
    const rr = await rawRestore('gzip -dc', gz.location);
    const rrz = await rawRestore('zstd -dcq', rawZstUrl);
    settle();
    const rg = await child.restore<OursRestore>(info.storageUrl, info.token, join(dir, 'restore-gz'), gz.location, gz.checksum);
    rmSync(join(dir, 'restore-gz'), { recursive: true, force: true });
    settle();
    const rz = await child.restore<OursRestore>(info.storageUrl, info.token, join(dir, 'restore-zst'), zs.location, zs.checksum);
    for (const r of [rg, rz]) if (r.rows !== filled.rows) throw new Error(`restored ${r.rows} rows, expected ${filled.rows}`);

    const mb = streamBytes / 1e6;
    console.log(`xbstream ${mb.toFixed(0)} MB (MB/s below is of it), Swift on 127.0.0.1, node ${process.version}, segments of ${(segmentMaxSize / 2 ** 20).toFixed(0)} MiB, ${new Date().toISOString().slice(0, 10)}`);
    const row = table(mb);
    for (const [name, s, rss] of raw) row(name, s, null, rss);
    row('ours: create_backup gzip → Swift', gz.seconds, gz.size, gz.peakRssKiB / 1024);
    row('ours: create_backup zstd → Swift', zs.seconds, zs.size, zs.peakRssKiB / 1024);
    row('restore raw: curl | gzip -dc | mbstream, --prepare', rr.seconds, null, 0);
    row('restore raw: curl | zstd -dc | mbstream, --prepare', rrz.seconds, null, 0);
    row('restore ours from gzip (prepare, server started)', rg.seconds, null, rg.peakRssKiB / 1024);
    row('restore ours from zstd (prepare, server started)', rz.seconds, null, rz.peakRssKiB / 1024);
    if (trove) {
      row("Trove's tool: mariabackup | gzip → Swift", trove.backup, trove.stored, 0);
      row("restore Trove's tool: GET | gzip -d | mbstream -x", trove.restore, null, 0);
      row("restore Trove's tool, then mariabackup --prepare", trove.restore + trove.prepare, null, 0);
    }
    const [, rawGz] = raw[1]!;
    const [, rawZs] = raw[2]!;
    const [, rawZsSwift] = raw[3]!;
    console.log(`ratios: ours gzip ${(rawGz / gz.seconds).toFixed(2)}x the speed of mariabackup | gzip; ours zstd ${(zs.seconds / rawZs).toFixed(2)}x the time of mariabackup | zstd -T0 -3; ` +
      `${(zs.seconds / rawZsSwift).toFixed(2)}x the time of the same raw pipe uploading to Swift; ` +
      `restore from zstd ${(rr.seconds / rz.seconds).toFixed(2)}x faster than the raw gzip restore, ${(rrz.seconds / rz.seconds).toFixed(2)}x the speed of the raw zstd one (fetch alone: gzip ${rg.fetchSeconds.toFixed(1)} s, zstd ${rz.fetchSeconds.toFixed(1)} s)`);
    if (trove) {
      console.log(`against Trove's own tool: ours gzip ${(trove.backup / gz.seconds).toFixed(2)}x its speed, ours zstd ${(trove.backup / zs.seconds).toFixed(2)}x (targets 2x and ~10x); ` +
        `restore from zstd ${(trove.restore / rz.seconds).toFixed(2)}x faster than its restore, ${((trove.restore + trove.prepare) / rz.seconds).toFixed(2)}x with the --prepare it leaves out (target 3x)`);
    } else console.log("Trove's own tool: no rows (set GA_TROVE_SRC to a checkout of openstack/trove 18.0.0)");
    console.log(`(ours: the Node process was at ${(gz.baselineKiB / 1024).toFixed(0)} MiB before a backup, ${(rg.baselineKiB / 1024).toFixed(0)} MiB before a restore)`);
  } finally {
    await source.lifecycle.close().catch(() => {});
    await keystone?.stop();
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await serveOursChild({
  backup: (url, token, [stateDir, seg, codec]) => oursBackup(url, token, stateDir!, Number(seg), codec as Codec),
  restore: oursRestore,
});
