/**
 * Suite-wide private OpenStack Swift (Debian's swift 2.30 packages) on free
 * 127.0.0.1 ports in a temp dir: one ring device as a plain directory (1
 * replica, mount_check off), account/container/object servers, a private
 * memcached for tempauth tokens, and a proxy with tempauth (test:tester /
 * testing) and the pipeline Trove deployments use (incl. slo). The machine's
 * own services are never touched. Tests get the storage URL and a token, as
 * Trove's guest gets them, through `inject('swift')`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../harness/ports.ts';
import { startKeystone } from './keystone.ts';

export interface SwiftInfo {
  /** tempauth endpoint, e.g. http://127.0.0.1:PORT/auth/v1.0 */
  authUrl: string;
  /** http://127.0.0.1:PORT/v1/AUTH_test */
  storageUrl: string;
  /** An X-Auth-Token valid for a day. */
  token: string;
  user: string;
  key: string;
  /** The object server's devices directory: where tests find an object's file to damage it at rest. */
  devices: string;
}

declare module 'vitest' {
  interface ProvidedContext {
    swift: SwiftInfo;
  }
}

const HINT =
  'apt-get install -y --no-install-recommends swift swift-proxy swift-account swift-container swift-object python3-swiftclient memcached (or run scripts/install-deps.sh)';

// Swift always reads this file (hash path suffix, storage policy 0).
const MINIMAL_SWIFT_CONF = `[swift-hash]
swift_hash_path_suffix = guestagent-test
swift_hash_path_prefix = guestagent-test

[storage-policy:0]
name = Policy-0
default = yes
`;

/** The pipeline Trove deployments use, with `auth` (one or more filters) where tempauth sits. */
const pipeline = (auth: string): string =>
  `catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ${auth} copy slo dlo versioned_writes symlink proxy-logging proxy-server`;

/** The authentication part of a proxy: its filters' names in the pipeline and their sections. */
export interface ProxyAuth {
  filters: string;
  sections: string;
}

/** Section names are the pipeline's; entry points use underscores. */
const filter = (name: string, extra = ''): string =>
  `[filter:${name}]\nuse = egg:swift#${name === 'cache' ? 'memcache' : name.replaceAll('-', '_')}\n${extra}\n`;

const TEMPAUTH: ProxyAuth = { filters: 'tempauth', sections: filter('tempauth', 'user_test_tester = testing .admin\ntoken_life = 86400\n') };

function serverConf(kind: 'account' | 'container' | 'object', dir: string, port: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 1
user = root
swift_dir = ${dir}
devices = ${join(dir, 'srv')}
mount_check = false
log_facility = LOG_LOCAL2
log_level = WARNING

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

function proxyConf(dir: string, port: number, memcachePort: number, auth: ProxyAuth): string {
  const f = filter;
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 1
user = root
swift_dir = ${dir}
log_facility = LOG_LOCAL2
log_level = WARNING

[pipeline:main]
pipeline = ${pipeline(auth.filters)}

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

${auth.sections}
${f('catch_errors')}${f('gatekeeper')}${f('healthcheck')}${f('proxy-logging', 'access_log_level = WARNING\n')}${f('cache', `memcache_servers = 127.0.0.1:${memcachePort}\n`)}${f('listing_formats')}${f('bulk')}${f('tempurl')}${f('copy')}${f('slo')}${f('dlo')}${f('versioned_writes')}${f('symlink')}`;
}

function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Asks tempauth for a token; the answer carries the storage URL too. */
export async function swiftAuth(authUrl: string, user: string, key: string): Promise<{ token: string; storageUrl: string }> {
  const r = await httpGet(authUrl, { 'X-Auth-User': user, 'X-Auth-Key': key });
  const token = r.headers['x-auth-token'];
  const storageUrl = r.headers['x-storage-url'];
  if (r.status !== 200 || typeof token !== 'string' || typeof storageUrl !== 'string') {
    throw new Error(`tempauth answered ${r.status}`);
  }
  return { token, storageUrl };
}

/** What a second proxy needs to share this Swift's account/container/object servers. */
export interface SwiftBackend {
  /** swift_dir: the rings (and the servers' configs). */
  dir: string;
  memcachePort: number;
  /** proxy-server.conf for another proxy on these servers, authenticating with `auth`. */
  proxyConf(port: number, auth: ProxyAuth): string;
}

/** Starts a private Swift; `stop` kills its processes and removes its files. */
export async function startSwift(): Promise<{ info: SwiftInfo; backend: SwiftBackend; stop: () => Promise<void> }> {
  for (const bin of ['/usr/bin/swift-proxy-server', '/usr/bin/swift-object-server', '/usr/bin/swift-ring-builder', '/usr/bin/memcached']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: ${HINT}`);
  }
  if (!existsSync('/etc/swift/swift.conf')) {
    mkdirSync('/etc/swift', { recursive: true });
    writeFileSync('/etc/swift/swift.conf', MINIMAL_SWIFT_CONF);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ga-swift-'));
  mkdirSync(join(dir, 'srv', 'd1'), { recursive: true });
  const ports = { account: await freePort(), container: await freePort(), object: await freePort(), proxy: await freePort(), memcache: await freePort() };
  for (const kind of ['account', 'container', 'object'] as const) {
    const builder = join(dir, `${kind}.builder`);
    execFileSync('swift-ring-builder', [builder, 'create', '10', '1', '1'], { stdio: 'ignore' });
    execFileSync('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${ports[kind]}/d1`, '100'], { stdio: 'ignore' });
    try {
      execFileSync('swift-ring-builder', [builder, 'rebalance'], { stdio: 'ignore' });
    } catch (e) {
      // Exit 1 is a warning (e.g. balance), the ring file is still written.
      if (!existsSync(join(dir, `${kind}.ring.gz`))) throw e;
    }
    writeFileSync(join(dir, `${kind}-server.conf`), serverConf(kind, dir, ports[kind]));
  }
  writeFileSync(join(dir, 'proxy-server.conf'), proxyConf(dir, ports.proxy, ports.memcache, TEMPAUTH));

  const children: ChildProcess[] = [];
  const launch = (file: string, args: string[]): void => {
    const c = spawn(file, args, { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
    c.unref();
    children.push(c);
  };
  const stop = async (): Promise<void> => {
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    // GA_KEEP_SWIFT=1 keeps configs for debugging a failed start.
    if (!process.env.GA_KEEP_SWIFT) rmSync(dir, { recursive: true, force: true });
  };
  try {
    launch('memcached', ['-u', 'root', '-l', '127.0.0.1', '-p', String(ports.memcache), '-U', '0', '-m', '16']);
    for (const kind of ['account', 'container', 'object'] as const) {
      launch(`swift-${kind}-server`, [join(dir, `${kind}-server.conf`)]);
    }
    launch('swift-proxy-server', [join(dir, 'proxy-server.conf')]);
    const base = `http://127.0.0.1:${ports.proxy}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const dead = children.find((c) => c.exitCode !== null);
      if (dead) throw new Error(`${dead.spawnfile} exited with ${dead.exitCode} (configs in ${dir}): ${HINT}`);
      try {
        if ((await httpGet(`${base}/healthcheck`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`private Swift did not become healthy in 60 s (configs in ${dir})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const user = 'test:tester';
    const key = 'testing';
    const authUrl = `${base}/auth/v1.0`;
    const { token, storageUrl } = await swiftAuth(authUrl, user, key);
    // The account is created on first use; wait until its servers answer.
    for (;;) {
      const r = await httpGet(storageUrl, { 'X-Auth-Token': token });
      if (r.status === 200 || r.status === 204) break;
      if (Date.now() > deadline) throw new Error(`private Swift account not usable: HEAD ${r.status}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    return { info: { authUrl, storageUrl, token, user, key, devices: join(dir, 'srv') }, backend: { dir, memcachePort: ports.memcache, proxyConf: (port, auth) => proxyConf(dir, port, ports.memcache, auth) }, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Swift with tempauth (`inject('swift')`), and beside it a private Keystone
 * with a second, Keystone-authenticated proxy on the same servers
 * (`inject('keystone')`, setup/keystone.ts). Keystone's slow keystone-manage
 * steps run while Swift starts.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const swift = startSwift();
  let keystone: Awaited<ReturnType<typeof startKeystone>>;
  try {
    keystone = await startKeystone(swift.then((s) => s.backend));
  } catch (e) {
    await swift.then((s) => s.stop(), () => {});
    throw e;
  }
  const { info, stop } = await swift;
  project.provide('swift', info);
  project.provide('keystone', keystone.info);
  return async () => {
    await keystone.stop();
    await stop();
  };
}
