/**
 * The Redis 7 datastore (Debian's redis-server), with Redis's own meaning for
 * Trove's operations:
 * - users are ACL users with passwords; the agent's own `os_admin` ACL user
 *   has a random password in a 0600 file; the `default` user is off unless
 *   root is enabled, so only authenticated clients get in;
 * - a Trove "database" granted to a user is a key (and channel) namespace:
 *   database `app` means the key pattern `app:*` and channel pattern `app:*`;
 *   databases themselves have no Redis meaning and their methods say so;
 * - root is the `default` user with a password (Trove's RedisRootUser);
 * - backups are an RDB snapshot taken over the replication protocol
 *   (`redis-cli --rdb -`), restored by placing dump.rdb before the server starts;
 * - the server log is the SYSTEM guest log `redis`, always on: Redis 7 cannot
 *   move `logfile` at runtime, and the log is what explains a crash.
 * ACLs are persisted with ACL SAVE into the agent's ACL file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Admin, BackupFetcher, Root, Datastore, DatastoreOptions, OpContext, Page, PageRequest, PrepareRequest, ServiceStatus, User } from '../../src/datastore.ts';
import { BadRequestError, GuestError, InvalidValueError, OperationNotSupportedError, UserNotFoundError } from '../../src/errors.ts';
import { createProcessRunner } from '../../src/service/process.ts';
import type { ServiceRunner } from '../../src/service/runner.ts';
import { createSystemdRunner } from '../../src/service/systemd.ts';
import { exec } from '../../src/process/exec.ts';
import { connectResp, RedisError, type Reply, type RespClient } from './resp.ts';

export const DEFAULT_PROCESS_PORT = 16379;
/** Where Debian's redis-server.service (ProtectSystem=strict) lets the server write data: its ReadWritePaths. */
const DEBIAN_DATA_DIR = '/var/lib/redis';
/** The agent's drop-in for that unit when the data directory is elsewhere. */
const UNIT_DROP_IN = '/etc/systemd/system/redis-server.service.d/guestagent-data-dir.conf';
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const RESERVED_USERS = ['os_admin', 'default'];

function validUser(name: string): string {
  if (!NAME.test(name)) throw new InvalidValueError(`'${name}' is not a valid user name.`);
  if (RESERVED_USERS.includes(name)) throw new BadRequestError(`User '${name}' is reserved and cannot be used.`);
  return name;
}
function validNamespace(name: string): string {
  if (!NAME.test(name)) throw new InvalidValueError(`'${name}' is not a valid database (key namespace) name.`);
  return name;
}
function validPassword(pw: unknown): string {
  if (typeof pw !== 'string' || pw.length === 0 || /[\s\0]/.test(pw)) {
    throw new InvalidValueError('The password is not valid: it must be non-empty and without spaces.');
  }
  return pw;
}

export function createRedisDatastore(opts: DatastoreOptions): Datastore {
  const { log, section, runner: runnerKind, stateDir, events } = opts;
  const mountPoint = typeof section['mount_point'] === 'string' ? section['mount_point'] : '/var/lib/redis';
  const dataDir = runnerKind === 'process' ? join(stateDir, 'data') : mountPoint;
  const confFile = runnerKind === 'process' ? join(stateDir, 'redis.conf') : '/etc/redis/redis.conf';
  // Debian's server runs as redis: an include in the agent's own state dir (root's, 0700) would stop it at start.
  const overridesFile = runnerKind === 'process' ? join(stateDir, 'overrides.conf') : '/etc/redis/guestagent-overrides.conf';
  // On the data volume: Trove's users survive a rebuild (a new root disk), and Debian's redis user can write it.
  const aclFile = join(dataDir, 'users.acl');
  const secretFile = join(stateDir, 'os_admin.pass');
  // Debian's unit gives the redis user /run/redis (RuntimeDirectory); a self-run server uses the agent's own dir.
  const socket = runnerKind === 'process' ? join(stateDir, 'run', 'redis.sock') : '/run/redis/redis-server.sock';
  const port = opts.port ?? (runnerKind === 'process' ? DEFAULT_PROCESS_PORT : 6379);
  /** Debian's redis-server may write only under /var/log/redis (its unit's ReadWritePaths). */
  const logDir = runnerKind === 'process' ? join(stateDir, 'log') : '/var/log/redis';
  const serverLog = join(logDir, 'redis-server.log');

  const password = (): string | null => (existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : null);

  async function client(): Promise<RespClient> {
    const pw = password();
    if (pw === null) throw new GuestError('The database has not been prepared: no admin credentials yet.');
    const c = await connectResp({ path: socket });
    try {
      await c.call('AUTH', 'os_admin', pw);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }
  async function run<T>(fn: (c: RespClient) => Promise<T>): Promise<T> {
    const c = await client();
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }
  const ping = async (): Promise<boolean> => {
    try {
      return (await run((c) => c.call('PING'))) === 'PONG';
    } catch {
      return false;
    }
  };

  const runner: ServiceRunner =
    runnerKind === 'process'
      ? createProcessRunner({
          log: log.child({ component: 'redis-server' }),
          async waitReady(ctx) {
            const deadline = Date.now() + 60_000;
            while (Date.now() < deadline) {
              if (ctx.signal.aborted) throw new GuestError('aborted while waiting for redis');
              if (runner.state() !== 'running') throw new GuestError('redis-server exited');
              if (await ping()) return;
              await new Promise((r) => setTimeout(r, 100));
            }
            throw new GuestError('redis-server did not answer within 60 s');
          },
          command: () => ({
            file: '/usr/bin/redis-server',
            // Runner-owned settings win over redis.conf: later arguments override.
            args: [confFile, '--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--unixsocket', socket, '--unixsocketperm', '700',
              '--daemonize', 'no', '--protected-mode', 'yes', '--aclfile', aclFile, '--logfile', serverLog],
          }),
        })
      : createSystemdRunner('redis-server', exec);

  /** Hash for the ACL file: `#<sha256>` keeps plaintext passwords off disk and argv. */
  const sha = (pw: string) => createHash('sha256').update(pw).digest('hex');

  function writeBaseFiles(contents: string | null): void {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    mkdirSync(join(stateDir, 'run'), { recursive: true, mode: 0o700 });
    if (runnerKind === 'process') mkdirSync(logDir, { recursive: true, mode: 0o750 });
    if (!existsSync(overridesFile)) writeFileSync(overridesFile, '', { mode: 0o600 });
    const q = (v: string) => `"${v.replace(/[\\"]/g, '\\$&')}"`;
    // The agent's own settings come last; a self-run server also gets them (and its port) on its command line.
    const owned = [`logfile ${q(serverLog)}`, `dir ${q(dataDir)}`, `aclfile ${q(aclFile)}`, `unixsocket ${q(socket)}`, 'unixsocketperm 700'];
    // A default Trove's template or an override may change: a backup (redis-cli --rdb, a replica's
    // sync) starts at once instead of waiting 5 s for other replicas to join the same sync.
    const defaults = '# guestagent default: backups do not wait for other replicas\nrepl-diskless-sync-delay 0\n';
    writeFileSync(confFile, `${defaults}${(contents ?? 'save 900 1\nsave 300 10\nappendonly no\n').replace(/\s*$/, '\n')}# Written by guestagent: overrides are read last, then the settings the agent owns.\ninclude ${overridesFile}\n${owned.join('\n')}\n`, { mode: 0o600 });
  }

  /** Debian's server runs as redis: it must read its config and own what it writes on the volume. */
  async function giveToRedis(ctx: OpContext): Promise<void> {
    if (runnerKind !== 'systemd') return;
    await exec('/usr/bin/chown', ['redis:redis', confFile, overridesFile, aclFile], { signal: ctx.signal });
    await exec('/usr/bin/chown', ['-R', 'redis:redis', dataDir], { signal: ctx.signal });
  }

  /**
   * Debian's unit mounts everything read-only for the server (ProtectSystem=strict) except
   * /var/lib/redis, /var/log/redis, /run/redis and /etc/redis: with the data directory on another
   * mount point every SAVE, BGSAVE and ACL SAVE failed with "Read-only file system" (found by the
   * real boot with mount_point /srv/redis-vol). A drop-in adds the data directory; it goes again
   * once the data directory is back under /var/lib/redis.
   */
  async function letUnitWriteDataDir(ctx: OpContext): Promise<void> {
    if (runnerKind !== 'systemd') return;
    const covered = dataDir === DEBIAN_DATA_DIR || dataDir.startsWith(`${DEBIAN_DATA_DIR}/`);
    // A unit file's path value takes no quoting here: plain characters only (no spaces, no % specifiers).
    if (!covered && !/^\/[A-Za-z0-9_.\/-]+$/.test(dataDir)) throw new GuestError(`the data directory ${dataDir} has characters a systemd drop-in cannot carry safely`);
    const want = covered ? null : `# Written by guestagent: the data directory on the instance's volume is writable by redis-server.\n[Service]\nReadWritePaths=${dataDir}\n`;
    const have = existsSync(UNIT_DROP_IN) ? readFileSync(UNIT_DROP_IN, 'utf8') : null;
    if (want === have) return;
    if (want === null) {
      rmSync(UNIT_DROP_IN, { force: true });
    } else {
      // 0644 as unit files are, whatever the agent's UMask=0077.
      mkdirSync(dirname(UNIT_DROP_IN), { recursive: true });
      chmodSync(dirname(UNIT_DROP_IN), 0o755);
      writeFileSync(UNIT_DROP_IN, want);
      chmodSync(UNIT_DROP_IN, 0o644);
    }
    await exec('systemctl', ['daemon-reload'], { signal: ctx.signal, log: ctx.log });
  }

  /** A new os_admin password, written into the ACL file in place of the old one (other users stay). */
  function newAdminPassword(): void {
    const pw = randomBytes(24).toString('base64url');
    const line = `user os_admin on #${sha(pw)} ~* &* +@all`;
    const acl = existsSync(aclFile) ? readFileSync(aclFile, 'utf8') : 'user default off resetpass ~* &* +@all\n';
    const rest = acl.split('\n').filter((l) => l.trim() !== '' && !/^user os_admin\s/.test(l));
    writeFileSync(aclFile, [line, ...rest].join('\n') + '\n', { mode: 0o600 });
    writeFileSync(secretFile, pw + '\n', { mode: 0o600 });
    chmodSync(secretFile, 0o600);
  }

  /** Trove's overrides as redis.conf lines, refusing anything that could break out of a line. */
  function writeOverrides(overrides: Record<string, unknown>): void {
    const lines: string[] = [];
    for (const [k, v] of Object.entries(overrides)) {
      if (!/^[a-z][a-z0-9-]*$/.test(k)) throw new BadRequestError(`'${k}' is not a valid configuration option name`);
      if (typeof v === 'object' || /[\r\n\0]/.test(String(v))) throw new BadRequestError(`the value of '${k}' is not a single-line value`);
      lines.push(`${k} ${String(v)}`);
    }
    writeFileSync(overridesFile, lines.join('\n') + '\n', { mode: 0o600 });
  }

  async function secure(): Promise<void> {
    if (password() !== null && existsSync(aclFile)) return;
    const pw = randomBytes(24).toString('base64url');
    writeFileSync(secretFile, pw + '\n', { mode: 0o600 });
    chmodSync(secretFile, 0o600);
    writeFileSync(aclFile, `user os_admin on #${sha(pw)} ~* &* +@all\nuser default off resetpass ~* &* +@all\n`, { mode: 0o600 });
  }

  const aclUsers = async (c: RespClient): Promise<string[]> => ((await c.call('ACL', 'USERS')) as string[]).filter((u) => !RESERVED_USERS.includes(u)).sort();
  /** `ACL GETUSER` as a map; null when the user does not exist. */
  async function getUser(c: RespClient, name: string): Promise<Record<string, Reply> | null> {
    const r = await c.call('ACL', 'GETUSER', name);
    if (r === null) return null;
    const arr = r as Reply[];
    const out: Record<string, Reply> = {};
    for (let i = 0; i + 1 < arr.length; i += 2) out[String(arr[i])] = arr[i + 1]!;
    return out;
  }
  const namespacesOf = (u: Record<string, Reply>): string[] => {
    const keys = String(u['keys'] ?? '');
    return keys
      .split(' ')
      .filter((k) => k.startsWith('~') && k.endsWith(':*'))
      .map((k) => k.slice(1, -2))
      .sort();
  };
  async function setNamespaces(c: RespClient, name: string, namespaces: string[]): Promise<void> {
    const rules = ['resetkeys', 'resetchannels', ...namespaces.flatMap((n) => [`~${n}:*`, `&${n}:*`])];
    await c.call('ACL', 'SETUSER', name, ...rules);
  }

  const noDatabases = (op: string) => async (): Promise<never> => {
    throw new OperationNotSupportedError(`${op} (Redis has no databases; a granted database is a key namespace "<name>:*")`, 'redis');
  };

  const admin: Admin = {
    createDatabases: noDatabases('create_database'),
    listDatabases: noDatabases('list_databases'),
    deleteDatabase: noDatabases('delete_database'),
    async createUsers(users: User[], ctx) {
      const checked = users.map((u) => ({ name: validUser(u.name), pw: validPassword(u.password), dbs: u.databases.map(validNamespace) }));
      await run(async (c) => {
        for (const u of checked) {
          if (await getUser(c, u.name)) throw new BadRequestError(`User '${u.name}' already exists.`);
          // Ordinary users: all commands but admin and dangerous ones, on their namespaces only.
          await c.call('ACL', 'SETUSER', u.name, 'reset', 'on', `>${u.pw}`, '+@all', '-@admin', '-@dangerous');
          await setNamespaces(c, u.name, u.dbs);
          ctx.log.info({ user: u.name }, 'redis user created');
        }
        await c.call('ACL', 'SAVE');
      });
    },
    async listUsers(p: PageRequest): Promise<Page<User>> {
      return run(async (c) => {
        let names = await aclUsers(c);
        if (p.marker) names = names.filter((n) => (p.includeMarker ? n >= p.marker! : n > p.marker!));
        const limit = p.limit ?? null;
        const more = limit !== null && names.length > limit;
        const page = limit !== null ? names.slice(0, limit) : names;
        const items: User[] = [];
        for (const n of page) items.push({ name: n, host: '%', password: null, databases: namespacesOf((await getUser(c, n)) ?? {}) });
        return { items, nextMarker: more ? page[page.length - 1]! : null };
      });
    },
    async getUser(name: string) {
      validUser(name);
      return run(async (c) => {
        const u = await getUser(c, name);
        return u ? { name, host: '%', password: null, databases: namespacesOf(u) } : null;
      });
    },
    async deleteUser(user: User) {
      validUser(user.name);
      await run(async (c) => {
        if (!(await getUser(c, user.name))) throw new UserNotFoundError(user.name);
        await c.call('ACL', 'DELUSER', user.name);
        await c.call('ACL', 'SAVE');
      });
    },
    async updateAttributes(name, _host, attrs) {
      validUser(name);
      await run(async (c) => {
        const u = await getUser(c, name);
        if (!u) throw new UserNotFoundError(name);
        if (attrs.password) await c.call('ACL', 'SETUSER', name, 'resetpass', `>${validPassword(attrs.password)}`);
        if (attrs.name && attrs.name !== name) {
          // Redis has no rename: recreate under the new name with the same rules, then drop the old one.
          const newName = validUser(attrs.name);
          if (await getUser(c, newName)) throw new BadRequestError(`User '${newName}' already exists.`);
          const rules = String((await c.call('ACL', 'LIST') as string[]).find((l) => l.startsWith(`user ${name} `)) ?? '').split(' ').slice(2);
          await c.call('ACL', 'SETUSER', newName, ...rules);
          await c.call('ACL', 'DELUSER', name);
        }
        await c.call('ACL', 'SAVE');
      });
    },
    async changePasswords(users: User[]) {
      const checked = users.map((u) => ({ name: validUser(u.name), pw: validPassword(u.password) }));
      await run(async (c) => {
        for (const u of checked) {
          if (!(await getUser(c, u.name))) throw new UserNotFoundError(u.name);
          await c.call('ACL', 'SETUSER', u.name, 'resetpass', `>${u.pw}`);
        }
        await c.call('ACL', 'SAVE');
      });
    },
    async grantAccess(name, _host, databases) {
      validUser(name);
      const dbs = databases.map(validNamespace);
      await run(async (c) => {
        const u = await getUser(c, name);
        if (!u) throw new UserNotFoundError(name);
        await setNamespaces(c, name, [...new Set([...namespacesOf(u), ...dbs])]);
        await c.call('ACL', 'SAVE');
      });
    },
    async revokeAccess(name, _host, database) {
      validUser(name);
      validNamespace(database);
      await run(async (c) => {
        const u = await getUser(c, name);
        if (!u) throw new UserNotFoundError(name);
        await setNamespaces(c, name, namespacesOf(u).filter((d) => d !== database));
        await c.call('ACL', 'SAVE');
      });
    },
    async listAccess(name) {
      validUser(name);
      return run(async (c) => {
        const u = await getUser(c, name);
        if (!u) throw new UserNotFoundError(name);
        return namespacesOf(u).map((d) => ({ name: d, characterSet: null, collate: null }));
      });
    },
  };

  const status = {
    async status(): Promise<ServiceStatus> {
      if (await ping()) return 'healthy';
      const s = runner.state();
      return s === 'running' ? 'running' : s === 'crashed' ? 'crashed' : 'shutdown';
    },
  };

  const root: Root = {
    async enableRoot(pw) {
      const p = pw === null ? randomBytes(24).toString('base64url') : validPassword(pw);
      await run(async (c) => {
        await c.call('ACL', 'SETUSER', 'default', 'on', 'resetpass', `>${p}`, '~*', '&*', '+@all');
        await c.call('ACL', 'SAVE');
      });
      events.rootEnabled?.({ name: 'root', host: '%', password: null, databases: [] });
      return { name: 'root', host: '%', password: p, databases: [], isRoot: true };
    },
    async disableRoot() {
      await run(async (c) => {
        await c.call('ACL', 'SETUSER', 'default', 'off', 'resetpass');
        await c.call('ACL', 'SAVE');
      });
    },
    async isRootEnabled() {
      return run(async (c) => {
        const u = await getUser(c, 'default');
        const flags = (u?.['flags'] as string[] | undefined) ?? [];
        return flags.includes('on') && !flags.includes('nopass');
      });
    },
  };

  return {
    name: 'redis',
    mountPoint,
    status,
    admin,
    root,
    configuration: {
      async updateOverrides(overrides, remove) {
        writeOverrides(remove ? {} : overrides);
      },
      async applyOverrides(overrides, ctx) {
        await run(async (c) => {
          for (const [k, v] of Object.entries(overrides)) {
            try {
              await c.call('CONFIG', 'SET', k, String(v));
            } catch (e) {
              if (!(e instanceof RedisError)) throw e;
              ctx.log.warn({ option: k, reason: e.message }, 'override not applied live');
            }
          }
        });
      },
      async resetConfiguration(contents) {
        writeBaseFiles(contents);
      },
    },
    backup: {
      async plan() {
        const pw = password();
        if (pw === null) throw new GuestError('The database has not been prepared: no admin credentials for the backup.');
        return {
          // The snapshot comes over the replication protocol: consistent, and nothing written to local disk.
          producer: { file: '/usr/bin/redis-cli', args: ['-s', socket, '--user', 'os_admin', '--no-auth-warning', '--rdb', '-'], env: { REDISCLI_AUTH: pw } },
          extension: 'rdb.gz',
          compress: true,
          metadata: () => ({}),
          cleanup: async () => {},
        };
      },
    },
    logs: {
      // Trove's Redis manager calls the server log 'redis', a SYSTEM log. It holds no commands at any
      // loglevel (verbose and debug name a command, never its arguments), so no password reaches it.
      defs: () => [{ name: 'redis', type: 'SYS', file: serverLog }],
      isEnabled: async (name) => name === 'redis',
      async setEnabled(name) {
        throw new BadRequestError(`Log '${name}' is a SYSTEM log: the Redis server log is always on.`);
      },
    },
    lifecycle: {
      async prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher) {
        if (req.backupInfo && !fetcher) throw new OperationNotSupportedError('restore from backup during prepare', 'redis');
        await runner.stop(ctx);
        mkdirSync(stateDir, { recursive: true, mode: 0o700 });
        writeBaseFiles(req.configContents);
        if (req.overrides) writeOverrides(req.overrides);
        await secure();
        await giveToRedis(ctx);
        await letUnitWriteDataDir(ctx);
        if (req.backupInfo && fetcher) {
          if (!req.backupInfo.location) throw new GuestError('backup_info has no location to restore from');
          rmSync(join(dataDir, 'dump.rdb'), { force: true });
          await fetcher.restoreInto(req.backupInfo.location, req.backupInfo.checksum ?? null, { file: '/usr/bin/dd', args: [`of=${join(dataDir, 'dump.rdb')}`, 'bs=1M', 'status=none'] }, ctx);
          // dd wrote it as root (0600 under the unit's UMask): Debian's server, user redis, could not load it (the real boot's restore).
          await giveToRedis(ctx);
        }
        await runner.start(ctx);
        if (req.users.length) await admin.createUsers(req.users, ctx).catch((err: unknown) => ctx.log.warn({ err }, 'creating users failed'));
        if (req.rootPassword && !req.backupInfo) await root.enableRoot(req.rootPassword, ctx).catch((err: unknown) => ctx.log.error({ err }, 'enabling root failed'));
      },
      async restart(ctx) {
        await runner.restart(ctx);
      },
      async stop(o, ctx) {
        await runner.stop(ctx, { disableOnBoot: o.doNotStartOnReboot });
      },
      async startWithConfChanges(contents, ctx) {
        if (contents !== null) writeBaseFiles(contents);
        await runner.start(ctx);
      },
      async rebuild(req, ctx) {
        await runner.stop(ctx);
        if (!existsSync(dataDir)) throw new GuestError(`no Redis data directory ${dataDir}: is the instance's data volume mounted at ${mountPoint}?`);
        mkdirSync(stateDir, { recursive: true, mode: 0o700 });
        writeBaseFiles(req.configContents);
        writeOverrides(req.overrides ?? {});
        // The admin password left with the old root disk; Trove's users stay in the volume's ACL file.
        newAdminPassword();
        await giveToRedis(ctx);
        await letUnitWriteDataDir(ctx);
        await runner.start(ctx);
        ctx.log.info({ data_dir: dataDir }, 'server back on the rebuilt guest with its data');
      },
      async resume(prepared, ctx) {
        if (prepared && runner.kind === 'process') await runner.start(ctx);
      },
      async close() {
        await runner.close();
      },
    },
  };
}
