/**
 * MySQL logical backup and restore throughput, side by side in one run,
 * against a private Swift and a private mysqld (Debian unstable's MySQL 9.7
 * from scripts/fetch-mysql.sh, GA_MYSQL_DIR) the agent's MySQL datastore runs
 * itself (free port, own directory):
 *   raw:    mysqldump > /dev/null                                   (the tool alone)
 *           mysqldump | gzip -6 > /dev/null
 *           mysqldump | zstd -T0 -3 > /dev/null
 *           mysqldump | zstd -T0 -3 | curl -T - → Swift             (what Swift costs here)
 *   ours:   the agent's create_backup (the datastore's plan → runBackup → Swift), gzip and zstd
 *   restore raw:  curl <zstd object> | zstd -dc | mysql, into a running empty server
 *   restore ours: prepare(backup_info) of a new MySQL datastore (checksum, decompress, mysql,
 *                 the server initialized and started; the load gives os_admin its password)
 * The raw rows run the very command line the agent's plan builds (its option file carries the
 * password). MB/s is of mysqldump's output (what is compressed and stored) per wall second. Peak
 * RSS is the Node process for ours (the tools excluded), the compressor for raw. There is no
 * Trove anchor: Trove 18 backs MySQL up with XtraBackup only, which no reachable archive has.
 * Usage: node bench/backup.ts mysql [table bytes, default 1e9] [segmentMiB]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { createMysqlDatastore } from '../datastores/mysql/index.ts';
import { mysqlTools } from '../datastores/mysql/dump.ts';
import { connectSql } from '../datastores/mysql/sql.ts';
import type { Codec } from '../src/backup/compress.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import type { Datastore, PrepareRequest } from '../src/datastore.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { startSwift } from '../test/integration/setup/swift.ts';
import { measureBackup, measureRestore, rawPipelines, settle, shell, shQuote, table, type OursBackup, type OursRestore } from './backup-common.ts';
import { oursChild, serveOursChild } from './shipped.ts';

const silent = pino({ level: 'silent' });
const ctx = () => ({ log: silent, signal: new AbortController().signal });
const CONFIG = '[mysqld]\ninnodb_buffer_pool_size = 256M\ninnodb_redo_log_capacity = 512M\n';
const MYSQLD = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin', 'mysqld');
const tools = mysqlTools(dirname(MYSQLD));

const mysql = (stateDir: string, port: number): Datastore =>
  createMysqlDatastore({ log: silent, section: { server_binary: MYSQLD, client_bin_dir: dirname(MYSQLD) }, runner: 'process', stateDir, port, events: {} });

function prepareRequest(backupInfo: PrepareRequest['backupInfo']): PrepareRequest {
  return {
    memoryMb: 0, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo, configContents: CONFIG,
    rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '9.7',
  };
}
const adminCnf = (stateDir: string) => join(stateDir, 'os_admin.cnf');
const admin = (stateDir: string) =>
  connectSql({ socketPath: join(stateDir, 'run', 'mysqld.sock'), user: 'os_admin', password: /password = (.*)/.exec(readFileSync(adminCnf(stateDir), 'utf8'))![1]! });

/** Order-like rows (as the MariaDB bench's, SHA-2 for MD5 and SHA-1, which MySQL 9.7 no longer has) until the tables hold `bytes`; a recursive CTE makes 200,000 per statement. */
async function fill(stateDir: string, bytes: number): Promise<{ rows: number; dataBytes: number }> {
  const db = admin(stateDir);
  try {
    await db.query('CREATE DATABASE IF NOT EXISTS bench');
    await db.query(`CREATE TABLE IF NOT EXISTS bench.orders (
      id BIGINT PRIMARY KEY, customer CHAR(32), sku VARCHAR(40), state VARCHAR(16), amount DECIMAL(12,2), note VARCHAR(400), KEY (customer)) ENGINE=InnoDB`);
    let rows = 0;
    for (;;) {
      await db.query('ANALYZE TABLE bench.orders');
      const [size] = await db.query<{ n: number }>("SELECT COALESCE(SUM(data_length + index_length), 0) AS n FROM information_schema.tables WHERE table_schema = 'bench'");
      if (Number(size!.n) >= bytes) return { rows, dataBytes: Number(size!.n) };
      await db.query(
        `INSERT /*+ SET_VAR(cte_max_recursion_depth = 1000000) */ INTO bench.orders
         SELECT ? + n, substr(sha2(n % 50000, 256), 1, 32), concat('SKU-', n % 9973, '-', substr(sha2(n, 224), 1, 8)),
           elt(1 + n % 4, 'new', 'paid', 'shipped', 'returned'), (n % 100000) / 100,
           concat_ws(' ', 'order', ? + n, 'for customer', substr(sha2(n % 50000, 256), 1, 32), 'delivered to', elt(1 + n % 5, 'Geneva', 'Meyrin', 'Prevessin', 'Lyon', 'Annecy'), repeat(substr(sha2(n, 256), 1, 6), n % 30))
         FROM (WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200000) SELECT n FROM seq) AS s`,
        [rows, rows],
      );
      rows += 200_000;
    }
  } finally {
    await db.end();
  }
}

/** In a fresh Node process (its own peak RSS): the agent's create_backup of the source. */
async function oursBackup(storageUrl: string, token: string, stateDir: string, segmentMaxSize: number, codec: Codec): Promise<void> {
  const ds = mysql(stateDir, 0);
  try {
    process.stdout.write(JSON.stringify(await measureBackup({ datastore: ds, name: 'mysql', version: '9.7', storageUrl, token, segmentMaxSize, codec })));
  } finally {
    // The plan asked the server where its binary log stands: that connection would keep this process alive.
    await ds.lifecycle.close();
  }
}

/** In a fresh Node process: prepare(backup_info) of a new MySQL datastore; the fetches (streams into mysql) timed apart. */
async function oursRestore(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<void> {
  const rows = async (): Promise<number> => {
    const db = admin(stateDir);
    const [r] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench.orders');
    await db.end();
    return Number(r!.n);
  };
  const datastore = mysql(stateDir, await freePort());
  process.stdout.write(JSON.stringify(await measureRestore({ datastore, version: '9.7', storageUrl, token, request: prepareRequest({ id: 'restore', location, checksum }), rows })));
}

const child = oursChild(import.meta.filename);

export async function benchMysql(bytes: number, segMiB: number | undefined): Promise<void> {
  const segmentMaxSize = segMiB ? segMiB * 1024 * 1024 : 2 * 1024 ** 3;
  for (const bin of [MYSQLD, tools.mysql, tools.mysqldump, '/usr/bin/zstd', '/usr/bin/gzip', '/usr/bin/curl']) execFileSync('test', ['-x', bin]);
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-mysql-'));
  const { info, stop } = await startSwift();
  const srcDir = join(dir, 'source');
  const source = mysql(srcDir, await freePort());
  try {
    await source.lifecycle.prepare(prepareRequest(null), ctx());
    let t = performance.now();
    const filled = await fill(srcDir, bytes);
    console.log(`filled ${filled.rows.toLocaleString('en')} rows in ${((performance.now() - t) / 1000).toFixed(0)} s; tables ${(filled.dataBytes / 1e6).toFixed(0)} MB`);

    // Raw tool pipelines with the agent's own mysqldump command line.
    const plan = await source.backup!.plan({ backupId: 'raw', parent: null, codec: 'gzip' }, ctx());
    const tool = [plan.producer.file, ...plan.producer.args].map(shQuote).join(' ');
    const hdr = join(dir, 'headers');
    writeFileSync(hdr, `X-Auth-Token: ${info.token}\n`, { mode: 0o600 });
    const rawZstUrl = `${info.storageUrl}/bench/raw-${Date.now()}.sql.zst`;
    await createSwiftClient({ storageUrl: info.storageUrl, token: info.token }).putContainer('bench');
    const { rows: raw, streamBytes } = await rawPipelines({ label: 'mysqldump', tool, env: {}, dir, swift: { hdr, url: rawZstUrl } });
    await plan.cleanup();

    settle();
    const gz = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(segmentMaxSize), 'gzip']);
    settle();
    const zs = await child.backup<OursBackup>(info.storageUrl, info.token, [srcDir, String(segmentMaxSize), 'zstd']);
    await source.lifecycle.close();

    // Raw restore: the raw zstd object into a running, empty server, as a shell would load it.
    const emptyDir = join(dir, 'raw-restore');
    const empty = mysql(emptyDir, await freePort());
    await empty.lifecycle.prepare(prepareRequest(null), ctx());
    settle();
    const rr = await shell(`curl -sS -f -H @"$HDR" "$URL" | zstd -dcq | ${shQuote(tools.mysql)} --defaults-extra-file="$CNF" --binary-mode --max-allowed-packet=1G`, {
      HDR: hdr, URL: rawZstUrl, CNF: adminCnf(emptyDir),
    });
    await empty.lifecycle.close();
    rmSync(emptyDir, { recursive: true, force: true });
    settle();
    const rg = await child.restore<OursRestore>(info.storageUrl, info.token, join(dir, 'restore-gz'), gz.location, gz.checksum);
    rmSync(join(dir, 'restore-gz'), { recursive: true, force: true });
    settle();
    const rz = await child.restore<OursRestore>(info.storageUrl, info.token, join(dir, 'restore-zst'), zs.location, zs.checksum);
    for (const r of [rg, rz]) if (r.rows !== filled.rows) throw new Error(`restored ${r.rows} rows, expected ${filled.rows}`);

    const mb = streamBytes / 1e6;
    console.log(`mysqldump output ${mb.toFixed(0)} MB (MB/s below is of it), Swift on 127.0.0.1, node ${process.version}, segments of ${(segmentMaxSize / 2 ** 20).toFixed(0)} MiB, ${new Date().toISOString().slice(0, 10)}`);
    const row = table(mb);
    for (const [name, s, rss] of raw) row(name, s, null, rss);
    row('ours: create_backup gzip → Swift', gz.seconds, gz.size, gz.peakRssKiB / 1024);
    row('ours: create_backup zstd → Swift', zs.seconds, zs.size, zs.peakRssKiB / 1024);
    row('restore raw: curl | zstd -dc | mysql (server running)', rr.seconds, null, 0);
    row('restore ours from gzip (prepare: init, start, load)', rg.seconds, null, rg.peakRssKiB / 1024);
    row('restore ours from zstd (prepare: init, start, load)', rz.seconds, null, rz.peakRssKiB / 1024);
    const [, rawGz] = raw[1]!;
    const [, rawZs] = raw[2]!;
    const [, rawZsSwift] = raw[3]!;
    console.log(`ratios: ours gzip ${(rawGz / gz.seconds).toFixed(2)}x the speed of mysqldump | gzip; ours zstd ${(zs.seconds / rawZs).toFixed(2)}x the time of mysqldump | zstd -T0 -3; ` +
      `${(zs.seconds / rawZsSwift).toFixed(2)}x the time of the same raw pipe uploading to Swift; ` +
      `restore from zstd ${(rz.seconds / rr.seconds).toFixed(2)}x the time of the raw load (its load alone ${(rz.fetchSeconds / rr.seconds).toFixed(2)}x; fetch+load: gzip ${rg.fetchSeconds.toFixed(1)} s, zstd ${rz.fetchSeconds.toFixed(1)} s)`);
    console.log(`(ours: the Node process was at ${(gz.baselineKiB / 1024).toFixed(0)} MiB before a backup, ${(rg.baselineKiB / 1024).toFixed(0)} MiB before a restore)`);
  } finally {
    await source.lifecycle.close().catch(() => {});
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await serveOursChild({
  backup: (url, token, [stateDir, seg, codec]) => oursBackup(url, token, stateDir!, Number(seg), codec as Codec),
  restore: oursRestore,
});
