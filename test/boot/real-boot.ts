/**
 * A real boot, end to end (issue 7): a Debian bookworm guest root built with
 * debootstrap (cached under /var/cache/guestagent-boot), our mariadb
 * cloud-init template plus what Trove 18's prepare_cloud_config appends (the
 * injected guest_info.conf and trove-guestagent.conf) as a NoCloud seed,
 * booted with systemd as PID 1 under systemd-nspawn on the host's network.
 * cloud-init installs MariaDB and the agent's release tarball (served from
 * the host) and starts the unit; on the host, a private RabbitMQ, Trove's
 * Python conductor and Trove's Python guest API client then see: the agent
 * answer, prepare reach `healthy`, and create_database land in the guest's
 * MariaDB. Not part of `npm test` (it needs minutes and Debian's mirrors):
 * `npm run test:boot`. Root only. Prints PASS or FAIL and the duration.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../integration/harness/ports.ts';
import { PythonCaller, PythonConductor, type PeerResult } from '../integration/harness/python-peer.ts';
import { startRabbitNode } from '../integration/setup/rabbit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = '/var/cache/guestagent-boot';
// python3-cffi-backend: debootstrap does not resolve the virtual python3-cffi-backend-api-max that cloud-init's python3-cryptography needs.
const PACKAGES = 'systemd,systemd-sysv,dbus,cloud-init,python3-cffi-backend,ca-certificates,curl,iproute2,python3-jsonschema,e2fsprogs';
const GUEST_DB_PORT = 23306; // the host's own MariaDB has 3306 on the shared network

const t0 = Date.now();
const step = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
const sh = (file: string, args: string[], opts: { cwd?: string } = {}) => execFileSync(file, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** The cached guest root, built once by debootstrap (minbase + systemd + cloud-init). */
function guestRootfs(): string {
  const rootfs = join(CACHE, 'rootfs');
  const stamp = join(CACHE, 'rootfs.packages');
  if (existsSync(rootfs) && existsSync(stamp) && readFileSync(stamp, 'utf8') === PACKAGES) return rootfs;
  step(`building the guest root with debootstrap (cached in ${CACHE})`);
  rmSync(rootfs, { recursive: true, force: true });
  const tmp = join(CACHE, 'rootfs.tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(CACHE, { recursive: true });
  sh('debootstrap', ['--variant=minbase', `--include=${PACKAGES}`, 'bookworm', tmp, 'http://deb.debian.org/debian']);
  renameSync(tmp, rootfs);
  writeFileSync(stamp, PACKAGES);
  return rootfs;
}

/**
 * The user data Trove 18 hands Nova: the template's text followed by what its
 * own BaseInstance.prepare_cloud_config makes of the injected files. Trove's
 * `injected_config_owner` defaults to `ubuntu` (its Ubuntu images); a Debian
 * image has no such user, so the operator sets it to root, as here.
 */
function userData(template: string, files: Record<string, string>): string {
  const script = [
    'import json, sys, warnings', 'warnings.filterwarnings("ignore")',
    'from trove.common import cfg', 'cfg.CONF([], project="trove")', 'cfg.CONF.set_override("injected_config_owner", "root")',
    'from trove.instance.models import BaseInstance',
    'sys.stdout.write(BaseInstance.prepare_cloud_config(None, json.loads(sys.argv[1])))',
  ].join('\n');
  return template + execFileSync('/usr/bin/python3', ['-c', script, JSON.stringify(files)], { encoding: 'utf8' });
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('run as root (debootstrap, systemd-nspawn)');
  for (const bin of ['/usr/sbin/debootstrap', '/usr/bin/systemd-nspawn']) {
    if (!existsSync(bin)) throw new Error(`${bin} missing: apt-get install -y debootstrap systemd-container`);
  }
  const rootfs = guestRootfs();
  step('building the release tarball');
  sh(join(ROOT, 'scripts/build-release.sh'), [], { cwd: ROOT });
  const tarball = readdirSync(join(ROOT, 'dist')).find((f) => /^guestagent-.*-linux-x64\.tar\.gz$/.test(f));
  if (!tarball) throw new Error('no release tarball in dist/');

  const work = mkdtempSync('/var/tmp/ga-boot-');
  const children: ChildProcess[] = [];
  let stopRabbit: (() => Promise<void>) | null = null;
  let caller: PythonCaller | null = null;
  let conductor: PythonConductor | null = null;
  const machine = `ga-boot-${randomUUID().slice(0, 8)}`;
  let leader = 0;
  try {
    const httpPort = await freePort();
    children.push(spawn('/usr/bin/python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(httpPort), '--directory', join(ROOT, 'dist')], { stdio: 'ignore' }));
    const rabbit = await startRabbitNode();
    stopRabbit = rabbit.stop;
    const url = rabbit.info.url.replace(/^amqp:/, 'rabbit:');
    const guestId = randomUUID();
    const key = `boot-key-${randomUUID()}`;
    const queue = `trove-conductor-${guestId}`;
    conductor = await PythonConductor.start({ url: rabbit.info.url, keys: { [guestId]: key }, queue });
    step(`private RabbitMQ on ${rabbit.info.port}, release served on ${httpPort}, guest ${guestId}`);

    // The guest: a copy of the cached root with the NoCloud seed Trove's user data would be.
    const root = join(work, 'root');
    cpSync(rootfs, root, { recursive: true, verbatimSymlinks: true });
    const template = readFileSync(join(ROOT, 'cloudinit/mariadb.cloudinit'), 'utf8').replaceAll('GUESTAGENT_RELEASE_URL', `http://127.0.0.1:${httpPort}/${tarball}`);
    const files = {
      '/etc/trove/conf.d/guest_info.conf': `[DEFAULT]\nguest_id=${guestId}\ndatastore_manager=mariadb\ndatastore_version=10.11\ntenant_id=boot-project\ninstance_rpc_encr_key=${key}\n`,
      '/etc/trove/conf.d/trove-guestagent.conf': `[DEFAULT]\ntransport_url = ${url}\ncontrol_exchange = trove\nconductor_queue = ${queue}\nreport_interval = 5\n[mariadb]\nmount_point = /var/lib/mysql\n`,
    };
    const seed = join(root, 'var/lib/cloud/seed/nocloud');
    mkdirSync(seed, { recursive: true });
    writeFileSync(join(seed, 'user-data'), userData(template, files));
    writeFileSync(join(seed, 'meta-data'), `instance-id: ${guestId}\nlocal-hostname: ${machine}\n`);
    // minbase has no locales package: C.UTF-8 is the one locale it has.
    writeFileSync(join(root, 'etc/cloud/cloud.cfg.d/90-guestagent-boot.cfg'), 'datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n');
    // The package's own start of MariaDB must not collide with the host's 3306.
    mkdirSync(join(root, 'etc/mysql/mariadb.conf.d'), { recursive: true });
    writeFileSync(join(root, 'etc/mysql/mariadb.conf.d/99-boot-port.cnf'), `[mysqld]\nport = ${GUEST_DB_PORT}\nbind-address = 127.0.0.1\n`);
    writeFileSync(join(root, 'etc/hostname'), `${machine}\n`);
    cpSync('/etc/resolv.conf', join(root, 'etc/resolv.conf'));

    step(`booting ${machine} with systemd-nspawn (console in ${work}/console.log)`);
    const consoleLog = openSync(join(work, 'console.log'), 'w');
    const nspawn = spawn('systemd-nspawn', ['--boot', '--directory', root, '--machine', machine, '--register=no', '--keep-unit', '--console=pipe', '--resolv-conf=off'], {
      stdio: ['ignore', consoleLog, consoleLog],
      // The guest's systemd on cgroup v2: on a v1/hybrid host it otherwise never sees a failed unit's
      // cgroup empty, and cloud-config (oneshot, TimeoutSec=0) hangs in stop-sigterm for good.
      env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: process.env['SYSTEMD_NSPAWN_UNIFIED_HIERARCHY'] ?? '1' },
    });
    children.push(nspawn);
    const exited = new Promise<number | null>((r) => nspawn.once('exit', (c) => r(c)));
    void exited.then((c) => step(`systemd-nspawn exited (${c})`));

    // The container's init: killing it ends every process of the guest (its PID namespace);
    // killing systemd-nspawn alone would leave the guest running.
    leader = await until('the guest init', 30_000, async () => {
      try {
        return Number(sh('pgrep', ['-P', String(nspawn.pid)]).trim().split('\n')[0]) || null;
      } catch {
        return null;
      }
    });
    caller = await PythonCaller.start({ url: rabbit.info.url, guestId, key });
    const c = caller;
    step('waiting for cloud-init to install MariaDB and the agent, and for the agent to answer');
    await until('the agent to answer rpc_ping', 20 * 60_000, async () => {
      if (nspawn.exitCode !== null) throw new Error('the guest stopped; see console.log');
      const r = await c.raw('rpc_ping', {}, { timeout: 5 });
      return r.ok ? true : null;
    });
    step('the agent answers; sending prepare through Trove\'s guest API');
    const from = conductor.received.length;
    const ok = (r: PeerResult) => {
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      return r.result;
    };
    ok(await caller.api('prepare', {
      memory_mb: 1024, packages: '', databases: [{ _name: 'fromprepare' }], users: [], device_path: null, mount_point: '/var/lib/mysql',
      config_contents: `[mysqld]\nport = ${GUEST_DB_PORT}\nbind-address = 127.0.0.1\nmax_connections = 50\n`, root_password: null, overrides: {}, ds_version: '10.11',
    }, { notification: true }));
    const first = await conductor.waitFor((x) => x.method === 'heartbeat' && x.kwargs['instance_id'] === guestId, 5 * 60_000, from);
    step(`first heartbeat at the conductor: ${JSON.stringify(first.kwargs['payload'])}`);
    const status = (x: { kwargs: Record<string, unknown> }) => (x.kwargs['payload'] as { service_status?: string } | undefined)?.service_status ?? '';
    const end = await conductor.waitFor((x) => x.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes(status(x)), 10 * 60_000, from);
    if (status(end) !== 'healthy') throw new Error(`prepare ended ${status(end)}`);
    step('prepare reached healthy');
    ok(await caller.api('create_database', { databases: [{ _name: 'booted', _character_set: 'utf8mb4', _collate: 'utf8mb4_general_ci' }] }));
    // Seen from inside the guest: its own mariadb client over its own socket, in its namespaces.
    const dbs = await until('booted in SHOW DATABASES', 60_000, async () => {
      const out = sh('nsenter', ['-t', String(leader), '-m', '-u', '-i', '-n', '-p', '/usr/bin/mariadb', '-N', '-e', 'SHOW DATABASES']);
      return out.split('\n').includes('booted') ? out : null;
    });
    step(`guest MariaDB databases: ${dbs.trim().split('\n').join(', ')}`);
    const datadir = sh('nsenter', ['-t', String(leader), '-m', '-u', '-i', '-n', '-p', '/usr/bin/mariadb', '-N', '-e', 'SELECT @@datadir']).trim();
    if (datadir.replace(/\/$/, '') !== '/var/lib/mysql/data') throw new Error(`the guest's server runs on ${datadir}, not the volume's /var/lib/mysql/data`);
    if (!dbs.split('\n').includes('fromprepare')) throw new Error('the database prepare created is missing');
    console.log(`PASS real boot in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return 0;
  } catch (e) {
    console.log(`FAIL real boot after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${(e as Error).message}`);
    try {
      console.log(readFileSync(join(work, 'console.log'), 'utf8').split('\n').slice(-20).join('\n'));
      // The agent's own account of it, from the guest's journal.
      console.log(execFileSync('journalctl', ['-D', join(work, 'root/var/log/journal'), '-u', 'guestagent', '-o', 'cat', '--no-pager', '-n', '40'], { encoding: 'utf8' }));
    } catch {
      /* no console or journal yet */
    }
    return 1;
  } finally {
    await caller?.close().catch(() => {});
    await conductor?.close().catch(() => {});
    if (leader) {
      try {
        process.kill(leader, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const ch of children.reverse()) if (ch.exitCode === null) ch.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await stopRabbit?.().catch(() => {});
    if (!process.env['GA_BOOT_KEEP']) rmSync(work, { recursive: true, force: true });
  }
}

process.exit(await main());
