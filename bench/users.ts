/**
 * Users benchmark (issue 3): one create_user cast carrying 1,000 users, then
 * list_users paged to the end; our agent beside Trove's own MySQL admin code,
 * on the same private mariadbd, in one run.
 *
 *   npm run bench:users                 (as root; builds dist/ first: the agent runs as it ships)
 *   node bench/users.ts --users 200     (a quick trial)
 *
 * ours:   dist/bin/guestagent.js (datastore_manager mariadb, process runner: it
 *         starts its own mariadbd on a free port in a temp state dir), prepared
 *         through Trove's Python guest API client (test/peer/caller.py) over a
 *         private RabbitMQ node. Then, through the same client:
 *           create: ONE create_user cast carrying N users (password + one
 *                   database each, the database made in prepare), timed from
 *                   the moment the bench hands the cast to Trove's client until
 *                   a poll over os_admin (every 10 ms) counts N grants on that
 *                   database in mysql.db (a grant needs its user: all exist);
 *           list:   list_users calls as Trove's API makes them (limit =
 *                   users_page_size, 20 by default in trove/common/cfg.py;
 *                   marker = the previous page's; include_marker = false) until
 *                   the agent answers no next marker. Each page is a full RPC
 *                   round trip through Trove's client (encryption, RabbitMQ).
 * anchor: /usr/bin/python3 bench/users-anchor.py: Trove 18's MariaDBAdmin
 *         (mysql_common BaseMySqlAdmin.create_users / list_users, Trove's
 *         engine and SqlClient) on the same mariadbd as os_admin, with the same
 *         N serialized users renamed py_*, timed in-process: no RPC, no
 *         serialization, no broker, which favours the anchor.
 * Our users are dropped (untimed) before the anchor runs, so both list the
 * same number of users from a server in the same state.
 * CPU: the agent process's utime+stime from /proc/<pid>/stat around each phase
 * (the Python caller's cost does not count); the anchor's own os.times();
 * mariadbd's from /proc around each phase for both. Not a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectSql, type SqlClient } from '../datastores/mysql/sql.ts';
import { startRabbitNode } from '../test/integration/setup/rabbit.ts';
import { freePort } from '../test/integration/harness/ports.ts';
import { PythonCaller, type PeerResult } from '../test/integration/harness/python-peer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KEY = 'bench-users-key';
const CLK_TCK = 100;
/** trove/common/cfg.py users_page_size (default 20): the limit Trove's API passes to list_users. */
const PAGE = 20;

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const N = Number(arg('--users') ?? 1000);
if (!Number.isInteger(N) || N < 1 || N > 9999) throw new Error('--users must be an integer from 1 to 9999');

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}
const ok = (r: PeerResult, what: string): unknown => {
  if (!r.ok) throw new Error(`${what}: ${JSON.stringify(r.error)}`);
  return r.result;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Serialized MySQLUser dicts, as Trove's API casts them (MySQLUser.serialize()). */
function users(prefix: string, database: string): Array<Record<string, unknown>> {
  return Array.from({ length: N }, (_, i) => ({
    _name: `${prefix}u${String(i + 1).padStart(4, '0')}`,
    _password: `Pw-${randomBytes(9).toString('hex')}`,
    _host: '%',
    _databases: [{ _name: database, _collate: null, _character_set: null }],
    _is_root: false,
  }));
}

interface Phase {
  seconds: number;
  cpu: number;
  serverCpu: number;
}
interface Side {
  create: Phase;
  list: Phase & { pages: number; users: number };
}

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(250);
  }
}

async function ours(caller: PythonCaller, agentPid: number, db: SqlClient, serverPid: number): Promise<Side> {
  const list = users('', 'bench_db');
  const grants = async () => Number((await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM mysql.db WHERE Db = 'bench_db'"))[0]!.n);
  if ((await grants()) !== 0) throw new Error('bench_db already has grants');
  let cpu0 = cpuSeconds(agentPid);
  let srv0 = cpuSeconds(serverPid);
  let t0 = performance.now();
  ok(await caller.api('create_user', { users: list }), 'create_user');
  for (;;) {
    if ((await grants()) >= N) break;
    await sleep(10);
    if (performance.now() - t0 > 600_000) throw new Error('create_user: not done within 600 s');
  }
  const create = { seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds(agentPid) - cpu0, serverCpu: cpuSeconds(serverPid) - srv0 };

  let marker: string | null = null;
  let pages = 0;
  let seen = 0;
  cpu0 = cpuSeconds(agentPid);
  srv0 = cpuSeconds(serverPid);
  t0 = performance.now();
  do {
    const [page, next] = ok(await caller.api('list_users', { limit: PAGE, marker, include_marker: false }), 'list_users') as [unknown[], string | null];
    pages++;
    seen += page.length;
    marker = next;
  } while (marker !== null);
  return { create, list: { seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds(agentPid) - cpu0, serverCpu: cpuSeconds(serverPid) - srv0, pages, users: seen } };
}

function anchor(socket: string, password: string, serverPid: number): Promise<Side> {
  const req = { socket, password, database: 'py_bench_db', users: users('py_', 'py_bench_db'), limit: PAGE, server_pid: serverPid };
  return new Promise((resolve, reject) => {
    const c = spawn('/usr/bin/python3', [join(ROOT, 'bench/users-anchor.py')], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Side) : reject(new Error(`anchor exited ${code}:\n${err}`))));
    c.stdin.end(JSON.stringify(req));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ga-bench-users-'));
  // The server's temporary tables in the run's own directory: a run once lost one to another job cleaning the shared /tmp.
  const serverTmp = join(dir, 'server-tmp');
  mkdirSync(serverTmp, { mode: 0o700 });
  const { info: rabbit, stop: stopRabbit } = await startRabbitNode();
  const guestId = 'bench-users';
  let agent: ChildProcess | null = null;
  let caller: PythonCaller | null = null;
  let db: SqlClient | null = null;
  let serverPid = 0;
  let o: Side;
  let p: Side;
  try {
    const info = join(dir, 'guest_info.conf');
    const conf = join(dir, 'trove-guestagent.conf');
    writeFileSync(info, `[DEFAULT]\nguest_id = ${guestId}\ndatastore_manager = mariadb\ndatastore_version = 10.11\ninstance_rpc_encr_key = ${KEY}\n`);
    writeFileSync(conf, `[DEFAULT]\ntransport_url = ${rabbit.url.replace(/^amqp:/, 'rabbit:')}\ncontrol_exchange = trove\n`);
    const stateDir = join(dir, 'state');
    const port = await freePort();
    // As it ships: the built launcher (its V8 flags and thread pool) on Node 24 from node_modules.
    const a = spawn(
      join(ROOT, 'dist/bin/guestagent.js'),
      ['--config-file', info, '--config-file', conf, '--state-dir', stateDir, '--runner', 'process', '--datastore-port', String(port), '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}` } },
    );
    agent = a;
    let agentErr = '';
    a.stderr!.on('data', (d: Buffer) => (agentErr = (agentErr + d.toString()).slice(-4000)));
    a.once('exit', (code) => code !== 0 && code !== null && console.error(`agent exited ${code}:\n${agentErr}`));
    caller = await PythonCaller.start({ url: rabbit.url, guestId, key: KEY });
    const c = caller;
    await waitFor('agent answers rpc_ping', 120_000, async () => ok(await c.raw('rpc_ping', {}, { timeout: 2 }), 'rpc_ping') ?? true);
    // Trove's taskmanager prepares the guest (a cast); the database the users get is made here.
    ok(await c.api('prepare', {
      memory_mb: 1024, packages: '', databases: [{ _name: 'bench_db', _character_set: null, _collate: null }], users: [],
      device_path: null, mount_point: '/var/lib/mysql', config_contents: `[mysqld]\ntmpdir = ${serverTmp}\n`, root_password: null, overrides: null, ds_version: '10.11',
    }, { notification: true }), 'prepare');
    await waitFor('prepare done (bench_db listed)', 300_000, async () => {
      const [dbs] = ok(await c.api('list_databases', {}, { timeout: 10 }), 'list_databases') as [Array<{ _name: string }>, unknown];
      return dbs.some((d) => d._name === 'bench_db') ? true : undefined;
    });
    const dsDir = readdirSync(stateDir).map((d) => join(stateDir, d)).find((d) => existsSync(join(d, 'os_admin.cnf')));
    if (!dsDir) throw new Error(`no os_admin.cnf under ${stateDir}`);
    const password = /password = (.*)/.exec(readFileSync(join(dsDir, 'os_admin.cnf'), 'utf8'))![1]!;
    const socket = join(dsDir, 'run', 'mysqld.sock');
    serverPid = Number(readFileSync(join(dsDir, 'run', 'mysqld.pid'), 'utf8').trim());
    db = connectSql({ socketPath: socket, user: 'os_admin', password });
    const [version] = await db.query<{ v: string }>('SELECT VERSION() AS v');

    o = await ours(c, a.pid!, db, serverPid);
    if (o.list.users !== N) throw new Error(`ours listed ${o.list.users} users, expected ${N}`);
    // Untimed: our users go, so the anchor starts from the same server state and lists only its own.
    const mine = await db.query<{ User: string; Host: string }>("SELECT User, Host FROM mysql.user WHERE User LIKE 'u%' AND Host = '%'");
    for (let i = 0; i < mine.length; i += 200) {
      const chunk = mine.slice(i, i + 200);
      await db.query(`DROP USER ${chunk.map(() => '?@?').join(', ')}`, chunk.flatMap((u) => [u.User, u.Host]));
    }
    await db.query('FLUSH PRIVILEGES');

    p = await anchor(socket, password, serverPid);
    if (p.list.users !== N) throw new Error(`the anchor listed ${p.list.users} users, expected ${N}`);

    const day = new Date().toISOString().slice(0, 10);
    console.log(`\n${day}: ${N} users (password + one database each) in one create_user; list_users pages of ${PAGE} (Trove's users_page_size); MariaDB ${version!.v}, node ${process.version}`);
    const rows: Array<[string, (s: Side) => string]> = [
      ['create: wall s', (s) => s.create.seconds.toFixed(3)],
      ['create: users/s', (s) => (N / s.create.seconds).toFixed(0)],
      ['create: agent/anchor CPU s', (s) => s.create.cpu.toFixed(2)],
      ['create: mariadbd CPU s', (s) => s.create.serverCpu.toFixed(2)],
      ['list: wall s', (s) => s.list.seconds.toFixed(3)],
      ['list: pages / users', (s) => `${s.list.pages} / ${s.list.users}`],
      ['list: users/s', (s) => (s.list.users / s.list.seconds).toFixed(0)],
      ['list: agent/anchor CPU s', (s) => s.list.cpu.toFixed(2)],
      ['list: mariadbd CPU s', (s) => s.list.serverCpu.toFixed(2)],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    const A = 'ours (agent, via RPC)';
    console.log(`${''.padEnd(w)}  ${A.padEnd(24)}  Trove MariaDBAdmin (in-process)`);
    for (const [label, f] of rows) console.log(`${label.padEnd(w)}  ${f(o).padEnd(24)}  ${f(p)}`);
    console.log(`ratios (anchor / ours; target >= 3x):`);
    console.log(`  create wall ${(p.create.seconds / o.create.seconds).toFixed(2)}x   list wall ${(p.list.seconds / o.list.seconds).toFixed(2)}x   ` +
      `both ${((p.create.seconds + p.list.seconds) / (o.create.seconds + o.list.seconds)).toFixed(2)}x`);
    console.log(`  create CPU ${(p.create.cpu / Math.max(o.create.cpu, 0.01)).toFixed(2)}x   list CPU ${(p.list.cpu / Math.max(o.list.cpu, 0.01)).toFixed(2)}x`);
    if (process.argv.includes('--json')) console.log(JSON.stringify({ n: N, page: PAGE, ours: o, anchor: p }));
  } finally {
    await db?.end().catch(() => {});
    await caller?.close().catch(() => {});
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (agent.exitCode === null) agent.kill('SIGKILL');
    }
    // The agent stops its mariadbd on SIGTERM; make sure.
    if (serverPid > 0 && existsSync(`/proc/${serverPid}`)) {
      await sleep(2000);
      if (existsSync(`/proc/${serverPid}`)) process.kill(serverPid, 'SIGKILL');
    }
    await stopRabbit();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
