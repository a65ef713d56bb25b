/**
 * Trove's own backup tool (upstream openstack/trove `backup/main.py`, the
 * program Trove 18's guest runs in its backup container) as a peer for
 * tests and benchmarks. Debian does not package it and its code is not ours
 * to vendor: it runs only when GA_TROVE_SRC names a checkout of
 * openstack/trove (tag 18.0.0), with Debian's python3 and the oslo,
 * keystoneauth1 and swiftclient packages python3-trove already depends on.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The checkout of openstack/trove, or null (then the peer is absent and its tests skip). */
export const TROVE_SRC: string | null = process.env['GA_TROVE_SRC'] || null;

/** What Trove 18's guest hands the tool: the user's token and project, and Keystone's URL. */
export interface ToolAuth {
  authUrl: string;
  projectId: string;
  userToken: string;
}

/**
 * python3 backup/main.py with the driver and the Keystone arguments Trove 18's guest passes
 * (mysql_common/service.py, postgres/service.py), as root in a private mount namespace where
 * each [source, target] is bind-mounted ('tmpfs': an empty one), as the guest's docker volumes
 * are. Resolves with its output, uncoloured; rejects when it exits non-zero.
 */
export async function runTroveTool(auth: ToolAuth, driver: string, args: string[], mounts: Array<[string, string]>, env: Record<string, string> = {}): Promise<string> {
  if (!TROVE_SRC) throw new Error('GA_TROVE_SRC is not set');
  const script = 'while [ "$1" != -- ]; do if [ "$1" = tmpfs ]; then mount -t tmpfs none "$2"; else mount --bind "$1" "$2"; fi || exit 1; shift 2; done; shift; exec "$@"';
  const argv = [
    '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...mounts.flat(), '--',
    '/usr/bin/python3', join(TROVE_SRC, 'backup', 'main.py'), '--storage-driver=swift', `--driver=${driver}`,
    `--os-token=${auth.userToken}`, `--os-auth-url=${auth.authUrl}`, `--os-tenant-id=${auth.projectId}`,
    ...args,
  ];
  const r = await run('unshare', argv, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  // oslo.log colours its lines.
  return (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '');
}

/** Location and checksum of the object the tool logged ("Backup successfully, checksum: X, location: Y"), or null. */
export function toolSaved(out: string): { location: string; checksum: string } | null {
  const m = /Backup successfully, checksum: ([0-9a-f]{32}), location: (\S+)/.exec(out);
  return m ? { checksum: m[1]!, location: m[2]! } : null;
}

/** Whether the tool logged a finished restore (it logs failures and still exits 0). */
export const toolRestored = (out: string): boolean => /Restore successfully/.test(out);

/**
 * A $HOME for the tool's mariabackup: Trove's driver passes only --host=localhost (no port, no
 * socket, no data dir), so its ~/.my.cnf points at the agent's own server in `stateDir` (the
 * process runner's layout) instead of the machine's MariaDB.
 */
export function mariabackupHome(home: string, stateDir: string): string {
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.my.cnf'), `[client]\nsocket = ${join(stateDir, 'run', 'mysqld.sock')}\n[mariabackup]\ndatadir = ${join(stateDir, 'data')}\n`);
  return home;
}
