/**
 * Suite-wide private OpenStack Keystone v3 (Debian's python3-keystone, no
 * apache, no system service) and a second Swift proxy authenticating its
 * tokens (keystonemiddleware's authtoken + Swift's keystoneauth), on free
 * 127.0.0.1 ports in a temp dir. The proxy shares the account/container/
 * object servers of setup/swift.ts (its rings); the tempauth proxy there is
 * untouched.
 *
 * Keystone: sqlite database, fernet tokens, keystone-manage fernet_setup /
 * credential_setup / db_sync / bootstrap (admin, RegionOne) in one Python
 * process (MANAGE), served by the package's keystone-wsgi-public (wsgiref).
 * Then, through Keystone's REST API as an operator would: a project, a user
 * with the `member` role on it (and on a second project, for cross-tenant
 * checks), the `object-store` service with a public RegionOne endpoint at
 * the Keystone proxy (`.../v1/AUTH_$(project_id)s`), a project-scoped token
 * of the user, and an application credential of that user. Tests get these
 * through `inject('keystone')`. Secrets are never printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.ts';
import type { ProxyAuth, SwiftBackend } from './swift.ts';

export interface KeystoneInfo {
  /** http://127.0.0.1:PORT/v3 */
  authUrl: string;
  projectId: string;
  projectName: string;
  userId: string;
  userName: string;
  password: string;
  /** The user's token scoped to the project (a day's life). */
  userToken: string;
  /** An application credential of the user (the project's roles). */
  appCredId: string;
  appCredSecret: string;
  /** The project's account at the Keystone proxy: http://127.0.0.1:PORT/v1/AUTH_<projectId> */
  storageUrl: string;
  /** Another project (ga-other) where the same user is a member too. */
  otherProjectId: string;
}

declare module 'vitest' {
  interface ProvidedContext {
    keystone: KeystoneInfo;
  }
}

const HINT = 'apt-get install -y --no-install-recommends python3-keystone python3-keystonemiddleware (or run scripts/install-deps.sh)';

const REGION = 'RegionOne';

function keystoneConf(dir: string): string {
  return `[DEFAULT]
log_file = ${join(dir, 'keystone.log')}
use_stderr = false

[database]
connection = sqlite:///${join(dir, 'keystone.db')}

[token]
provider = fernet
expiration = 86400

[fernet_tokens]
key_repository = ${join(dir, 'fernet-keys')}

[fernet_receipts]
key_repository = ${join(dir, 'fernet-keys')}

[credential]
key_repository = ${join(dir, 'credential-keys')}

[identity]
# bcrypt's least cost: the passwords here guard nothing.
password_hash_rounds = 4
`;
}

/** The suite's proxy with authtoken + keystoneauth in tempauth's place. */
function keystoneAuth(o: { keystonePort: number; adminPassword: string }): ProxyAuth {
  const ks = `http://127.0.0.1:${o.keystonePort}`;
  return {
    filters: 'authtoken keystoneauth',
    sections: `[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = ${ks}/v3
auth_url = ${ks}/v3
auth_type = password
username = admin
password = ${o.adminPassword}
user_domain_id = default
project_name = admin
project_domain_id = default
# bootstrap registers only public and admin identity endpoints (default: internal).
interface = public
region_name = ${REGION}
delay_auth_decision = true
service_token_roles_required = true
cache = swift.cache
include_service_catalog = false

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = AUTH_
operator_roles = admin, member
`,
  };
}

/** Runs a program to completion; rejects with its exit code and the tail of its stderr. */
function run(label: string, file: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    c.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${label} exited with ${code}: ${err.slice(-600)}`))));
  });
}

/**
 * keystone-manage's own entry point (keystone.cmd.cli.main) for the first
 * command, then the same parsed configuration re-read for each further
 * command, all in one interpreter: importing Keystone costs ~1.5 s of CPU per
 * process, which four keystone-manage runs paid four times (~8 s of the
 * suite's start on two busy cores; ~2.5 s this way).
 * argv: the config file, then a JSON list of commands (argument lists).
 */
const MANAGE = `
import json, sys
from keystone.cmd import cli
import keystone.conf
conf, cmds = sys.argv[1], json.loads(sys.argv[2])
cli.main(argv=['keystone-manage', '--config-file', conf, *cmds[0]])
for cmd in cmds[1:]:
    keystone.conf.CONF(args=['--config-file', conf, *cmd], project='keystone')
    keystone.conf.CONF.command.cmd_class.main()
`;

/** One call to Keystone's REST API; the answer's JSON and X-Subject-Token. */
async function api(base: string, method: string, path: string, o: { token?: string; body?: unknown; expect?: number } = {}): Promise<{ json: any; subjectToken: string | null }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...(o.token ? { 'X-Auth-Token': o.token } : {}) },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  if (res.status !== (o.expect ?? 201)) throw new Error(`Keystone ${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return { json: text ? JSON.parse(text) : null, subjectToken: res.headers.get('x-subject-token') };
}

const passwordAuth = (user: { name: string; password: string }, project: { name: string } | { id: string }) => ({
  auth: {
    identity: { methods: ['password'], password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } } },
    scope: { project: 'id' in project ? { id: project.id } : { name: project.name, domain: { id: 'default' } } },
  },
});

async function waitFor(what: string | (() => string), probe: () => Promise<boolean>, children: ChildProcess[], deadline: number, dir: string): Promise<void> {
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited with ${dead.exitCode ?? dead.signalCode} (configs and logs in ${dir}; GA_KEEP_SWIFT=1 keeps them): ${HINT}`);
    try {
      if (await probe()) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${typeof what === 'string' ? what : what()} not ready in time (logs in ${dir})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/**
 * Starts Keystone and the Keystone proxy. `backend` is the Swift whose
 * servers the proxy shares: Keystone starts meanwhile, and the proxy as soon
 * as the servers are up (its authtoken asks Keystone only when a request
 * comes). `stop` kills both and removes their files.
 */
export async function startKeystone(backend: Promise<SwiftBackend>): Promise<{ info: KeystoneInfo; stop: () => Promise<void> }> {
  for (const bin of ['/usr/bin/keystone-manage', '/usr/bin/keystone-wsgi-public', '/usr/bin/swift-proxy-server']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: ${HINT}`);
  }
  if (!existsSync('/usr/lib/python3/dist-packages/keystonemiddleware')) throw new Error(`keystonemiddleware is missing: ${HINT}`);
  const dir = mkdtempSync(join(tmpdir(), 'ga-keystone-'));
  const children: ChildProcess[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    stopped = true;
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    if (!process.env.GA_KEEP_SWIFT) rmSync(dir, { recursive: true, force: true });
  };
  const launch = (file: string, args: string[], env: Record<string, string>, logName: string): void => {
    const fd = openSync(join(dir, logName), 'w');
    const c = spawn(file, args, { stdio: ['ignore', fd, fd], detached: true, env: { ...process.env, ...env } });
    closeSync(fd);
    c.unref();
    children.push(c);
  };
  try {
    const [keystonePort, proxyPort] = [await freePort(), await freePort()];
    const authUrl = `http://127.0.0.1:${keystonePort}/v3`;
    const adminPassword = randomBytes(18).toString('base64url');
    const conf = join(dir, 'keystone.conf');
    for (const d of ['fernet-keys', 'credential-keys']) mkdirSync(join(dir, d), { mode: 0o700 });
    writeFileSync(conf, keystoneConf(dir), { mode: 0o600 });
    const owner = ['--keystone-user', 'root', '--keystone-group', 'root'];
    const commands = [
      ['fernet_setup', ...owner],
      ['credential_setup', ...owner],
      ['db_sync'],
      ['bootstrap', '--bootstrap-username', 'admin', '--bootstrap-project-name', 'admin', '--bootstrap-role-name', 'admin',
        '--bootstrap-region-id', REGION, '--bootstrap-public-url', authUrl, '--bootstrap-admin-url', authUrl],
    ];
    // The proxy, on the Swift servers once they are up, beside what follows.
    const proxyStarted = backend.then((swift) => {
      if (stopped) return;
      writeFileSync(join(dir, 'proxy-server.conf'), swift.proxyConf(proxyPort, keystoneAuth({ keystonePort, adminPassword })), { mode: 0o600 });
      launch('swift-proxy-server', [join(dir, 'proxy-server.conf')], {}, 'proxy.log');
    });
    proxyStarted.catch(() => {}); // awaited below; a Swift failure is the caller's to report
    // The password reaches bootstrap through the environment, never argv.
    await run('keystone-manage (fernet_setup, credential_setup, db_sync, bootstrap)', '/usr/bin/python3', ['-c', MANAGE, conf, JSON.stringify(commands)], { OS_BOOTSTRAP_PASSWORD: adminPassword });
    launch('keystone-wsgi-public', ['--host', '127.0.0.1', '--port', String(keystonePort)], { OS_KEYSTONE_CONFIG_DIR: dir, OS_KEYSTONE_CONFIG_FILES: 'keystone.conf' }, 'keystone-wsgi.log');
    const deadline = Date.now() + 60_000;
    await waitFor('Keystone', async () => (await fetch(authUrl, { signal: AbortSignal.timeout(2000) })).status === 200, children, deadline, dir);

    // As an operator would, with the admin's token.
    const { subjectToken: admin } = await api(authUrl, 'POST', '/auth/tokens', { body: passwordAuth({ name: 'admin', password: adminPassword }, { name: 'admin' }) });
    if (!admin) throw new Error('Keystone gave the admin no token');
    const member = (await api(authUrl, 'GET', '/roles?name=member', { token: admin, expect: 200 })).json.roles[0];
    if (!member) throw new Error('Keystone bootstrap made no member role');
    const projectName = 'ga-backups';
    const projectId: string = (await api(authUrl, 'POST', '/projects', { token: admin, body: { project: { name: projectName, domain_id: 'default', description: 'guestagent tests' } } })).json.project.id;
    const userName = 'ga-trove-user';
    const password = randomBytes(18).toString('base64url');
    const userId: string = (await api(authUrl, 'POST', '/users', { token: admin, body: { user: { name: userName, domain_id: 'default', password, default_project_id: projectId } } })).json.user.id;
    await api(authUrl, 'PUT', `/projects/${projectId}/users/${userId}/roles/${member.id}`, { token: admin, expect: 204 });
    // Another project of the same user: its tokens are good, but for another account.
    const otherProjectId: string = (await api(authUrl, 'POST', '/projects', { token: admin, body: { project: { name: 'ga-other', domain_id: 'default', description: 'guestagent tests: another tenant' } } })).json.project.id;
    await api(authUrl, 'PUT', `/projects/${otherProjectId}/users/${userId}/roles/${member.id}`, { token: admin, expect: 204 });
    const serviceId: string = (await api(authUrl, 'POST', '/services', { token: admin, body: { service: { type: 'object-store', name: 'swift', description: 'guestagent test Swift (Keystone proxy)' } } })).json.service.id;
    await api(authUrl, 'POST', '/endpoints', {
      token: admin,
      body: { endpoint: { service_id: serviceId, interface: 'public', region_id: REGION, url: `http://127.0.0.1:${proxyPort}/v1/AUTH_$(project_id)s` } },
    });

    // As the user: a token for the project, and an application credential.
    const { subjectToken: userToken } = await api(authUrl, 'POST', '/auth/tokens', { body: passwordAuth({ name: userName, password }, { id: projectId }) });
    if (!userToken) throw new Error('Keystone gave the user no token');
    const cred = (await api(authUrl, 'POST', `/users/${userId}/application_credentials`, { token: userToken, body: { application_credential: { name: 'ga-agent', description: 'guestagent [service_credentials]' } } })).json.application_credential;

    await proxyStarted;
    const storageUrl = `http://127.0.0.1:${proxyPort}/v1/AUTH_${projectId}`;
    await waitFor('Keystone proxy', async () => (await fetch(`http://127.0.0.1:${proxyPort}/healthcheck`, { signal: AbortSignal.timeout(2000) })).status === 200, children, deadline, dir);
    // The user's account answers (autocreated) once authtoken reaches Keystone;
    // 403 is keystoneauth's final word (the user's roles are not operator_roles).
    let last = 0;
    await waitFor(
      () => `the project's account at the Keystone proxy (last HEAD ${last})`,
      async () => {
        last = (await fetch(storageUrl, { method: 'HEAD', headers: { 'X-Auth-Token': userToken }, signal: AbortSignal.timeout(5000) })).status;
        return last === 204 || last === 200 || last === 403;
      },
      children,
      deadline,
      dir,
    );
    if (last === 403) throw new Error(`the Keystone proxy refuses the user's token for its own project (403; GA_KEEP_SWIFT=1 keeps the logs)`);
    return {
      info: { authUrl, projectId, projectName, userId, userName, password, userToken, appCredId: cred.id, appCredSecret: cred.secret, storageUrl, otherProjectId },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
