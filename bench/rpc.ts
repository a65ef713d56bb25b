/**
 * RPC benchmark: our agent beside Trove 18's own Python guest agent, in one run.
 *
 *   npm run bench:rpc   (as root: the Python agent runs in a private mount namespace;
 *                        builds dist/ first: the agent is measured as it ships, in JavaScript)
 *
 * Prints, for each agent: the agent process's own CPU seconds per 10,000
 * rpc_ping calls (from /proc/<pid>/stat, so the caller's cost does not count),
 * round-trip p50/p99 and calls/s with 1 and with 16 concurrent callers using
 * our fast caller (src/rpc/client.ts), p50 with Trove's own Python caller,
 * idle RSS 30 s after the last call, the CPU of a sparse call (one every 2 s, as
 * Trove's calls come: the agent's CPU over 10 such calls less the same time idle,
 * from every thread's schedstat; after one call and 20 s more of quiet), and the
 * time from launch to the first answer;
 * then the ratios against the targets. Not a test: nothing passes or fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { RpcClient } from '../src/rpc/client.ts';
import { createSecureCodec } from '../src/rpc/secure-codec.ts';
import { declareQueue, serverTopology } from '../src/rpc/topology.ts';
import { startRabbitNode } from '../test/integration/setup/rabbit.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { PythonCaller } from '../test/integration/harness/python-peer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KEY = 'bench-instance-key';
const PINGS = Number(process.env['BENCH_PINGS'] ?? 10_000);
const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}
/** CPU ms of every thread the process has now, from schedstat (ns, not ticks: a sparse call is far below a tick). */
function threadCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1e6;
}
const SPARSE_CALLS = 10;
const SPARSE_GAP_MS = 2000;

/** VmRSS split: anonymous (heaps, stacks) and file-backed (the interpreter's own binary and libraries). */
function rssParts(pid: number): { anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile') };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

interface Result {
  name: string;
  firstAnswerMs: number;
  cpuPer10k: number;
  p50: number;
  p99: number;
  rps1: number;
  p50x16: number;
  p99x16: number;
  rps16: number;
  pyP50: number;
  idleRss: number;
  idleAnon: number;
  idleFile: number;
  sparseMs: number;
}

/**
 * As Trove's API does before it casts prepare (guestagent/api.py _create_guest_queue): the
 * guest's topic queue exists before the agent starts, so a call made at launch waits in it
 * and its answer comes once the agent consumes. (Until session 19 the bench polled with 25 ms
 * calls until one was answered, which added up to 25 ms to either agent's figure.)
 */
async function predeclare(model: amqplib.ChannelModel, topic: string, guestId: string): Promise<void> {
  const ch = await model.createChannel();
  const t = serverTopology('trove', topic, guestId, { durableQueues: false, autoDelete: false, haQueues: false, quorumQueue: false, quorumDeliveryLimit: 0, quorumMaxMemoryLength: 0, quorumMaxMemoryBytes: 0, transientQueuesTtlSec: 1800 });
  await declareQueue(ch, t, t.queues[0]!);
  await ch.close();
}

async function firstAnswer(client: RpcClient, topic: string, launched: number): Promise<number> {
  await client.call(topic, 'rpc_ping', {}, { timeoutMs: 120_000 });
  return performance.now() - launched;
}

async function measure(name: string, pid: number, topic: string, client: RpcClient, url: string, guestId: string, launched: number): Promise<Result> {
  const firstAnswerMs = await firstAnswer(client, topic, launched);
  for (let i = 0; i < 200; i++) await client.call(topic, 'rpc_ping', {}, { timeoutMs: 5000 }); // warm-up
  const cpu0 = cpuSeconds(pid);
  const lat: number[] = [];
  let t = performance.now();
  for (let i = 0; i < PINGS; i++) {
    const s = performance.now();
    await client.call(topic, 'rpc_ping', {}, { timeoutMs: 5000 });
    lat.push(performance.now() - s);
  }
  const rps1 = PINGS / ((performance.now() - t) / 1000);
  const cpuPer10k = ((cpuSeconds(pid) - cpu0) * 10_000) / PINGS;
  const lat16: number[] = [];
  const perWorker = Math.ceil(PINGS / 16);
  t = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < perWorker; i++) {
        const s = performance.now();
        await client.call(topic, 'rpc_ping', {}, { timeoutMs: 10_000 });
        lat16.push(performance.now() - s);
      }
    }),
  );
  const rps16 = lat16.length / ((performance.now() - t) / 1000);
  const py = await PythonCaller.start({ url, guestId, key: KEY });
  const pyLat: number[] = [];
  for (let i = 0; i < 300; i++) {
    const s = performance.now();
    await py.raw('rpc_ping', {}, { timeout: 5 });
    pyLat.push(performance.now() - s);
  }
  await py.close();
  // Idle: 30 s after the last call (and so after launch), what a guest between Trove's calls holds.
  await new Promise((r) => setTimeout(r, 30_000));
  const idleRss = rssMiB(pid);
  const { anon: idleAnon, file: idleFile } = rssParts(pid);
  // Sparse calls: the agent's CPU over SPARSE_CALLS calls SPARSE_GAP_MS apart, less the same time idle just before.
  // The first call after the quiet spell reads back the code the agent paged out (once per 10 min at most): not counted.
  await client.call(topic, 'rpc_ping', {}, { timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 20_000));
  const i0 = threadCpuMs(pid);
  await new Promise((r) => setTimeout(r, SPARSE_CALLS * SPARSE_GAP_MS));
  const i1 = threadCpuMs(pid);
  for (let i = 0; i < SPARSE_CALLS; i++) {
    await new Promise((r) => setTimeout(r, SPARSE_GAP_MS));
    await client.call(topic, 'rpc_ping', {}, { timeoutMs: 5000 });
  }
  const sparseMs = (threadCpuMs(pid) - i1 - (i1 - i0)) / SPARSE_CALLS;
  return { sparseMs, name, firstAnswerMs, cpuPer10k, p50: pct(lat, 50), p99: pct(lat, 99), rps1, p50x16: pct(lat16, 50), p99x16: pct(lat16, 99), rps16, pyP50: pct(pyLat, 50), idleRss, idleAnon, idleFile };
}

function confFiles(dir: string, guestId: string, transportUrl: string, extra = ''): string[] {
  const info = join(dir, 'guest_info.conf');
  const conf = join(dir, 'trove-guestagent.conf');
  writeFileSync(info, `[DEFAULT]\nguest_id = ${guestId}\ndatastore_manager = mysql\ndatastore_version = 10.11\ninstance_rpc_encr_key = ${KEY}\n`);
  writeFileSync(conf, `[DEFAULT]\ntransport_url = ${transportUrl}\ncontrol_exchange = trove\n${extra}`);
  return [info, conf];
}

async function main(): Promise<void> {
  const { info: rabbit, stop: stopRabbit } = await startRabbitNode();
  const transport = rabbit.url.replace(/^amqp:/, 'rabbit:');
  const docker = createServer((req, res) => {
    if (req.url?.endsWith('/version')) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ApiVersion: '1.41', Version: '20.10.24', MinAPIVersion: '1.12', Os: 'linux', Arch: 'amd64' }));
    } else {
      res.statusCode = 404;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ message: 'No such container: database' }));
    }
  });
  const dockerPort = await freePort();
  await new Promise<void>((r) => docker.listen(dockerPort, '127.0.0.1', r));
  const model = await amqplib.connect(rabbit.url, { noDelay: true });
  const client = new RpcClient(model, 'trove', createSecureCodec(KEY));
  await client.open();
  const children: ChildProcess[] = [];
  const results: Result[] = [];
  const dirs: string[] = [];
  try {
    // Our agent.
    const ours = mkdtempSync(join(tmpdir(), 'bench-ours-'));
    dirs.push(ours);
    const oursId = 'bench-ours';
    const oursFiles = confFiles(ours, oursId, transport);
    // Launched as it ships: the built launcher, with its V8 flags, on Node 24 from node_modules,
    // from a copy of that binary of its own, as on a guest where no other process maps it: the
    // pages this bench's Node shares with it are not the agent's to page out when idle.
    mkdirSync(join(ours, 'bin'));
    copyFileSync(realpathSync(process.execPath), join(ours, 'bin', 'node'));
    await predeclare(model, `guestagent.${oursId}`, oursId);
    let launched = performance.now();
    const a = spawn(join(ROOT, 'dist/bin/guestagent.js'), [...oursFiles.flatMap((f) => ['--config-file', f]), '--state-dir', join(ours, 'state'), '--runner', 'process', '--log-level', 'warn'], {
      stdio: 'ignore',
      env: { ...process.env, PATH: `${join(ours, 'bin')}:${process.env['PATH'] ?? ''}` },
    });
    children.push(a);
    results.push(await measure('guestagent (TypeScript)', a.pid!, `guestagent.${oursId}`, client, rabbit.url, oursId, launched));

    // Trove's Python agent, in a private mount namespace.
    const py = mkdtempSync(join(tmpdir(), 'bench-py-'));
    dirs.push(py);
    const pyId = 'bench-python';
    const pyFiles = confFiles(py, pyId, transport, '[mysql]\ndevice_path = proc\nmount_point = /var/lib/mysql\n');
    const setup = ['/etc/mysql', '/var/lib/mysql', '/var/run/mysqld', '/opt'].map((d) => `mount -t tmpfs none ${d}`).join(' && ');
    await predeclare(model, `guestagent.${pyId}`, pyId);
    launched = performance.now();
    const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && mkdir -p /opt/trove-guestagent && exec /usr/bin/python3 "$0" "$@"`, join(ROOT, 'bench/py-agent.py'), ...pyFiles.flatMap((f) => ['--config-file', f])], {
      stdio: 'ignore',
      env: { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${dockerPort}` },
    });
    children.push(p);
    results.push(await measure('trove-guestagent 18 (Python)', p.pid!, `guestagent.${pyId}`, client, rabbit.url, pyId, launched));
  } finally {
    for (const c of children) c.kill('SIGTERM');
    // Once they are gone: their state directories go too.
    await Promise.race([
      Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))),
      new Promise((r) => setTimeout(r, 15_000).unref()),
    ]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await client.close();
    await model.close();
    docker.close();
    await stopRabbit();
  }
  const [o, p] = results as [Result, Result];
  const rows: Array<[string, (r: Result) => string]> = [
    ['first answer after launch (ms)', (r) => r.firstAnswerMs.toFixed(0)],
    [`agent CPU s per 10,000 rpc_ping`, (r) => r.cpuPer10k.toFixed(2)],
    ['round trip p50 / p99, 1 caller (ms)', (r) => `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)}`],
    ['calls/s, 1 caller', (r) => r.rps1.toFixed(0)],
    ['round trip p50 / p99, 16 callers (ms)', (r) => `${r.p50x16.toFixed(2)} / ${r.p99x16.toFixed(2)}`],
    ['calls/s, 16 callers', (r) => r.rps16.toFixed(0)],
    ["p50 with Trove's Python caller (ms)", (r) => r.pyP50.toFixed(2)],
    ['idle RSS 30 s after the last call (MiB)', (r) => r.idleRss.toFixed(1)],
    ['  of it anonymous / file-backed (MiB)', (r) => `${r.idleAnon.toFixed(1)} / ${r.idleFile.toFixed(1)}`],
    [`agent CPU ms per call, one every ${SPARSE_GAP_MS / 1000} s`, (r) => r.sparseMs.toFixed(2)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${''.padEnd(w)}  ${o.name.padEnd(26)}  ${p.name}`);
  for (const [label, f] of rows) console.log(`${label.padEnd(w)}  ${f(o).padEnd(26)}  ${f(p)}`);
  console.log('\nratios (ours / Python) and targets:');
  console.log(`  CPU per call     ${(o.cpuPer10k / p.cpuPer10k).toFixed(3)}   target <= 0.2`);
  console.log(`  CPU, sparse      ${(o.sparseMs / p.sparseMs).toFixed(3)}`);
  console.log(`  idle RSS         ${(o.idleRss / p.idleRss).toFixed(3)}   target <= 0.5`);
  console.log(`  first answer     ${(o.firstAnswerMs / 1000).toFixed(3)} s vs ${(p.firstAnswerMs / 1000).toFixed(3)} s   target <= 0.3 s`);
  console.log(`  calls/s, 16      ${(o.rps16 / p.rps16).toFixed(2)}x`);
  if (process.argv.includes('--json')) console.log(JSON.stringify(results));
}

await main();
