/**
 * Backup throughput, side by side in one run against a private Swift:
 *   anchors: <producer> | gzip -6 | curl -T - <swift url>   (Trove's tool: one gzip process)
 *            <producer> | zstd -T0 -3 | curl -T - <swift url>
 *   ours:    runBackup(): producer → gzip on every core (or zstd) → segmenter → Swift (+ Trove's copy/HEAD)
 * The producer streams ~300 MB of SQL-like text (~5x compressible). MB/s is
 * raw producer bytes per wall second. Peak RSS is the transport side only (gzip + curl
 * for the anchor, the Node process running runBackup for ours), the producer excluded
 * in both. Usage: npx node bench/backup.ts [bytes] [segmentMiB]
 * `node bench/backup.ts redis [bytes] [segmentMiB]` runs the Redis rows instead (bench/backup-redis.ts),
 * `node bench/backup.ts mariadb [bytes] [segmentMiB]` the MariaDB ones (bench/backup-mariadb.ts),
 * `node bench/backup.ts postgresql [bytes] [segmentMiB]` the PostgreSQL ones (bench/backup-postgresql.ts),
 * `node bench/backup.ts mysql [bytes] [segmentMiB]` Oracle MySQL's logical ones (bench/backup-mysql.ts).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CODEC_SUFFIX, type Codec } from '../src/backup/compress.ts';
import { runBackup } from '../src/backup/pipeline.ts';
import { createSwiftClient } from '../src/backup/swift-client.ts';
import { exposeMinorGc } from '../src/process/idle-gc.ts';
import { startSwift } from '../test/integration/setup/swift.ts';
import { runShipped } from './shipped.ts';

// The repository's own file, also from the compiled child in dist-bench/bench.
const PRODUCE = join(process.env['GA_BENCH_ROOT'] ?? join(import.meta.dirname, '..'), 'test/fixtures/backup/produce.mjs');

interface Row {
  name: string;
  seconds: number;
  storedBytes: number;
  peakRssMiB: number;
}

async function ours(storageUrl: string, token: string, bytes: number, segmentMaxSize: number | undefined, codec: Codec): Promise<void> {
  const baselineKiB = process.resourceUsage().maxRSS;
  const swift = createSwiftClient({ storageUrl, token });
  const t = performance.now();
  const r = await runBackup({
    producer: { file: process.execPath, args: [PRODUCE, String(bytes), 'bench', 'text'] },
    swift,
    container: 'bench',
    backupId: `ours-${Date.now()}`,
    codec,
    extension: `xbstream.${CODEC_SUFFIX[codec]}`,
    metadata: { datastore: 'mariadb', datastore_version: '10.11' },
    segmentMaxSize,
    log: pino({ level: 'silent' }),
    minorGc: exposeMinorGc(), // as the daemon composes it
  });
  const seconds = (performance.now() - t) / 1000;
  // ru_maxrss of this process (KiB), excluding children (the producer).
  process.stdout.write(JSON.stringify({ seconds, storedBytes: r.size, segments: r.segments, peakRssKiB: process.resourceUsage().maxRSS, baselineKiB }));
}

function anchor(storageUrl: string, token: string, bytes: number, dir: string, compressor: string): Promise<Row> {
  // The token goes to curl through a header file, not argv.
  const hdr = join(dir, 'headers');
  writeFileSync(hdr, `X-Auth-Token: ${token}\n`, { mode: 0o600 });
  const url = `${storageUrl}/bench/anchor-${Date.now()}.xbstream`;
  const timeFmt = ['-f', '%M', '-o'];
  const script = [
    'set -o pipefail',
    `"$NODE" "$PRODUCE" "$BYTES" bench text | /usr/bin/time ${timeFmt.join(' ')} "$DIR/gzip.rss" ${compressor} | /usr/bin/time ${timeFmt.join(' ')} "$DIR/curl.rss" curl -sS -f -o /dev/null -w '%{size_upload}' -H @"$HDR" -T - "$URL"`,
  ].join('\n');
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const c = spawn('bash', ['-c', script], {
      env: { ...process.env, NODE: process.execPath, PRODUCE, BYTES: String(bytes), DIR: dir, HDR: hdr, URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`anchor pipeline exited ${code}`));
      const seconds = (performance.now() - t) / 1000;
      const kib = (f: string): number => Number(readFileSync(join(dir, f), 'utf8').trim().split('\n').at(-1));
      resolve({ name: `anchor: | ${compressor} | curl -T -`, seconds, storedBytes: Number(out), peakRssMiB: (kib('gzip.rss') + kib('curl.rss')) / 1024 });
    });
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'redis') {
    const { benchRedis } = await import('./backup-redis.ts');
    await benchRedis(Number(process.argv[3] ?? 1_800_000_000), process.argv[4] ? Number(process.argv[4]) : undefined);
    return;
  }
  if (process.argv[2] === 'mariadb') {
    const { benchMariadb } = await import('./backup-mariadb.ts');
    await benchMariadb(Number(process.argv[3] ?? 2_000_000_000), process.argv[4] ? Number(process.argv[4]) : undefined);
    return;
  }
  if (process.argv[2] === 'mysql') {
    const { benchMysql } = await import('./backup-mysql.ts');
    await benchMysql(Number(process.argv[3] ?? 1_000_000_000), process.argv[4] ? Number(process.argv[4]) : undefined);
    return;
  }
  if (process.argv[2] === 'postgresql') {
    const { benchPostgresql } = await import('./backup-postgresql.ts');
    await benchPostgresql(Number(process.argv[3] ?? 2_000_000_000), process.argv[4] ? Number(process.argv[4]) : undefined);
    return;
  }
  if (process.argv[2] === '--ours') {
    const [, , , url, bytes, codec, seg] = process.argv;
    const token = readFileSync(0, 'utf8').trim();
    await ours(url!, token, Number(bytes), seg ? Number(seg) : undefined, codec as Codec);
    return;
  }
  const bytes = Number(process.argv[2] ?? 300_000_000);
  const segMiB = process.argv[3] ? Number(process.argv[3]) : undefined;
  for (const bin of ['curl', 'gzip', 'zstd']) execFileSync('which', [bin], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-'));
  const { info, stop } = await startSwift();
  try {
    const swift = createSwiftClient({ storageUrl: info.storageUrl, token: info.token });
    await swift.putContainer('bench');
    const rows: Row[] = [];
    const ratios: string[] = [];
    let baselineKiB = 0;
    for (const codec of ['gzip', 'zstd'] as const) {
      rows.push(await anchor(info.storageUrl, info.token, bytes, dir, codec === 'gzip' ? 'gzip -6' : 'zstd -T0 -3 -q'));
      // Ours in a fresh Node process so its peak RSS is its own; token on stdin.
      const o = await runShipped<{ seconds: number; storedBytes: number; segments: number; peakRssKiB: number; baselineKiB: number }>(
        import.meta.filename,
        ['--ours', info.storageUrl, String(bytes), codec, ...(segMiB ? [String(segMiB * 1024 * 1024)] : [])],
        info.token,
      );
      baselineKiB = o.baselineKiB;
      rows.push({ name: `ours: runBackup ${codec} (${o.segments} segment${o.segments > 1 ? 's' : ''})`, seconds: o.seconds, storedBytes: o.storedBytes, peakRssMiB: o.peakRssKiB / 1024 });
      const [a, b] = rows.slice(-2) as [Row, Row];
      ratios.push(`${codec}: ours ${(a.seconds / b.seconds).toFixed(2)}x the anchor's speed`);
    }
    console.log(`raw ${(bytes / 1e6).toFixed(0)} MB of SQL-like text, Swift on 127.0.0.1, node ${process.version}`);
    console.log(['pipeline'.padEnd(42), 'MB/s'.padStart(8), 'seconds'.padStart(8), 'stored MB'.padStart(10), 'peak RSS MiB'.padStart(13)].join(''));
    for (const r of rows) {
      console.log([r.name.padEnd(42), (bytes / 1e6 / r.seconds).toFixed(1).padStart(8), r.seconds.toFixed(2).padStart(8), (r.storedBytes / 1e6).toFixed(1).padStart(10), r.peakRssMiB.toFixed(1).padStart(13)].join(''));
    }
    console.log(ratios.join('; '));
    console.log(`(ours: the Node process was already at ${(baselineKiB / 1024).toFixed(1)} MiB after loading its modules, before the backup started)`);
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
